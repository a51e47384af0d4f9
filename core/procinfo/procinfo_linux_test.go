package procinfo

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
	"porthole/internal/childproc"
)

// acceptFrom accepts the connection whose remote address is from.
func acceptFrom(t testing.TB, ln net.Listener, from string) net.Conn {
	t.Helper()
	for range 100 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if c.RemoteAddr().String() == from {
			return c
		}
	}
	t.Fatalf("no connection from %s", from)
	return nil
}

func checkIs(t *testing.T, p *registry.Process, pid int, path string) {
	t.Helper()
	if !p.Known() || p.PID != pid || p.Path != path || p.Name != filepath.Base(path) {
		t.Fatalf("lookup = %+v, want pid %d path %s", p, pid, path)
	}
	if p.PPID != os.Getpid() || p.ParentName == "" {
		t.Fatalf("parent = %d %q, want %d (us)", p.PPID, p.ParentName, os.Getpid())
	}
	if p.UID != os.Getuid() {
		t.Fatalf("uid = %d, want %d", p.UID, os.Getuid())
	}
}

func TestLookupChild(t *testing.T) {
	bin := self(t)
	for _, c := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			ln := listen(t, c.network, c.addr)
			r := New()
			defer r.Close()
			cmd, _, local := startChild(t, bin, "hold", []string{ln.Addr().String()})
			conn := acceptFrom(t, ln, local)
			for i := range 3 { // the first scans, the next come from the cache
				checkIs(t, r.Lookup(conn.LocalAddr(), conn.RemoteAddr()), cmd.Process.Pid, bin)
				if st := r.Stats(); i > 0 && st.CacheHits != uint64(i) {
					t.Fatalf("lookup %d: %+v, want a cache hit", i, st)
				}
			}
		})
	}
}

// A dual-stack listener sees an IPv4 client as v4-mapped.
func TestLookupV4Mapped(t *testing.T) {
	ln := listen(t, "tcp", "[::]:0")
	port := ln.Addr().(*net.TCPAddr).Port
	bin := self(t)
	r := New()
	defer r.Close()
	cmd, _, local := startChild(t, bin, "hold", []string{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String()})
	conn := acceptFrom(t, ln, local)
	la := conn.LocalAddr().(*net.TCPAddr)
	ra := conn.RemoteAddr().(*net.TCPAddr)
	mapped := func(a *net.TCPAddr) *net.TCPAddr { return &net.TCPAddr{IP: a.IP.To16(), Port: a.Port} }
	checkIs(t, r.Lookup(mapped(la), mapped(ra)), cmd.Process.Pid, bin)
}

// heldByChild starts a child of this test binary that connects to a new
// listener and holds the connection; it returns the listener, the binary,
// a Resolver (closed at the test's end), the child and our end.
func heldByChild(t *testing.T) (net.Listener, string, *Resolver, *exec.Cmd, net.Conn) {
	t.Helper()
	ln := listen(t, "tcp4", "127.0.0.1:0")
	bin := self(t)
	r := New()
	t.Cleanup(func() { _ = r.Close() })
	cmd, _, local := startChild(t, bin, "hold", []string{ln.Addr().String()})
	return ln, bin, r, cmd, acceptFrom(t, ln, local)
}

// A netlink socket in a bad state costs no attribution: the lookup that
// meets it says why (Stats.Errors, LastError), drops it and asks again on
// another. The bad socket here is /dev/null, which reads nothing.
func TestLookupRetriesBadSocket(t *testing.T) {
	_, bin, r, cmd, conn := heldByChild(t)
	fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lr := r.os.(*linuxResolver)
	bad := &diagSock{fd: fd, buf: make([]byte, 64)}
	lr.put(bad)
	checkIs(t, r.Lookup(conn.LocalAddr(), conn.RemoteAddr()), cmd.Process.Pid, bin)
	if st := r.Stats(); st.Errors != 1 || !errors.Is(r.LastError(), errForged) {
		t.Fatalf("stats %+v, last error %v: want one error, errForged", st, r.LastError())
	}
	lr.mu.Lock()
	defer lr.mu.Unlock()
	for _, s := range lr.idle {
		if s == bad {
			t.Fatal("the bad socket went back to the pool")
		}
	}
}

// A client that exits right after connecting is "exited" (or, if the
// lookup was quicker, itself): never anyone else.
func TestLookupExited(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	bin := self(t)
	r := New()
	defer r.Close()
	for range 5 {
		cmd, _, local := startChild(t, bin, "exit", []string{ln.Addr().String()})
		conn := acceptFrom(t, ln, local)
		// Racing the exit:
		p := r.Lookup(conn.LocalAddr(), conn.RemoteAddr())
		if p.Known() && p.PID != cmd.Process.Pid {
			t.Fatalf("exiting child %d attributed to %+v", cmd.Process.Pid, p)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		// After the exit:
		if p := r.Lookup(conn.LocalAddr(), conn.RemoteAddr()); p.Known() || p.Unknown != ReasonExited {
			t.Fatalf("exited child: %+v, want unknown %q (last OS error: %v)", p, ReasonExited, r.LastError())
		}
	}
}

// A cached process whose pid now belongs to another process is not
// trusted: the cache's entry is pinned to the /proc directory of the
// process it was read about, which fails once that one exited, so the
// lookup reads the new holder of the pid again.
func TestLookupPIDReused(t *testing.T) {
	ln, bin, r, cmd, conn := heldByChild(t)
	checkIs(t, r.Lookup(conn.LocalAddr(), conn.RemoteAddr()), cmd.Process.Pid, bin)
	// An "impostor" that exits: its /proc directory, opened while it ran,
	// is what a cache entry holds after its process exited and the pid was
	// given to someone else.
	imp, stdin, _ := startChild(t, bin, "hold", []string{ln.Addr().String()})
	dead, err := unix.Open("/proc/"+strconv.Itoa(imp.Process.Pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close() // tells it to go
	_ = imp.Wait()    // reaped: its directory is dead
	// The cache now says: pid is "impostor", pinned to the dead directory,
	// with the real child's fd numbers as hints.
	tab := r.os.(*linuxResolver).procs
	tab.mu.Lock()
	e := tab.recent[0]
	if e.pid != cmd.Process.Pid {
		tab.mu.Unlock()
		_ = unix.Close(dead)
		t.Fatalf("cache holds pid %d, want %d", e.pid, cmd.Process.Pid)
	}
	fake := &procEntry{pid: e.pid, dir: dead, fds: slices.Clone(e.fds),
		proc: registry.Process{PID: e.pid, Name: "impostor", Path: "/usr/bin/impostor"}}
	tab.recent[0] = fake
	tab.evict(e)
	tab.mu.Unlock()
	checkIs(t, r.Lookup(conn.LocalAddr(), conn.RemoteAddr()), cmd.Process.Pid, bin)
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if !fake.evicted || fake.dir != -1 || slices.Contains(tab.recent, fake) {
		t.Fatalf("dead entry kept: evicted %v dir %d", fake.evicted, fake.dir)
	}
}

// The cache keeps at most cachedProcs directories open, closes those it
// evicts, and all of them at Close.
func TestCacheBounded(t *testing.T) {
	r := New()
	tab := r.os.(*linuxResolver).procs
	self := os.Getpid()
	var all []*procEntry
	for range cachedProcs + 10 {
		dir, err := unix.Open("/proc/self", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Distinct pids (fake ones, never looked up): only the bound is tested.
		e := &procEntry{pid: self + 1000000 + len(all), dir: dir}
		all = append(all, e)
		tab.remember(e, 3, connKey{})
	}
	tab.mu.Lock()
	if len(tab.recent) != cachedProcs {
		t.Errorf("%d cached, want %d", len(tab.recent), cachedProcs)
	}
	for i, e := range all {
		if open := e.dir >= 0; open != (i >= 10) {
			t.Errorf("entry %d: dir open %v", i, open)
		}
	}
	tab.mu.Unlock()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	for i, e := range all {
		if e.dir != -1 {
			t.Errorf("entry %d: dir %d open after Close", i, e.dir)
		}
	}
}

// Without the privilege to read root's open files, a lookup of root's
// socket answers "no permission", with the socket's uid, and no program.
func TestLookupNoPermission(t *testing.T) {
	cred := childproc.AsNobody(t)
	bin := copyForNobody(t, self(t))
	ln := listen(t, "tcp4", "127.0.0.1:0")
	client, err := net.Dial("tcp", ln.Addr().String()) // root's socket
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn := acceptFrom(t, ln, client.LocalAddr().String())
	_, _, line := startChild(t, bin, "lookup", []string{conn.LocalAddr().String(), conn.RemoteAddr().String()}, cred...)
	var p registry.Process
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	if p.Known() || p.PID != 0 || p.Name != "" || p.Unknown != ReasonNoPermission || p.UID != 0 {
		t.Fatalf("unprivileged lookup of root's socket = %+v, want unknown %q with uid 0", p, ReasonNoPermission)
	}
}

// copyForNobody copies the test binary where nobody may run it.
func copyForNobody(t *testing.T, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "procinfo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "procinfo.test")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Many children at once, each connection attributed to its own.
func TestLookupConcurrent(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	bin := self(t)
	r := New()
	defer r.Close()
	const n = 10
	pids := map[string]int{}
	for range n {
		cmd, _, local := startChild(t, bin, "hold", []string{ln.Addr().String()})
		pids[local] = cmd.Process.Pid
	}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for range 5 {
				p := r.Lookup(c.LocalAddr(), c.RemoteAddr())
				if want := pids[c.RemoteAddr().String()]; p.PID != want {
					t.Errorf("%s: pid %d (%+v), want %d", c.RemoteAddr(), p.PID, p, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestRemoteClient(t *testing.T) {
	r := New()
	defer r.Close()
	p := r.LookupAddrs(netip.MustParseAddrPort("192.0.2.1:8088"), netip.MustParseAddrPort("198.51.100.7:50000"))
	if p.Known() || p.Unknown != ReasonRemote {
		t.Fatalf("remote client: %+v", p)
	}
	if r.Stats().Lookups != 0 {
		t.Fatal("a remote client was looked up")
	}
	// No socket with this 4-tuple: nothing found, no name.
	p = r.LookupAddrs(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"))
	if p.Known() || p.Unknown != ReasonExited {
		t.Fatalf("no such socket: %+v", p)
	}
}

// selfEntry is a new Resolver's cache and an entry for this process (its
// /proc directory open), not yet in the cache.
func selfEntry(t *testing.T) (*procTable, *procEntry) {
	t.Helper()
	r := New()
	t.Cleanup(func() { _ = r.Close() })
	dir, err := unix.Open("/proc/self", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r.os.(*linuxResolver).procs, &procEntry{pid: os.Getpid(), dir: dir}
}

// A lookup borrows the cached processes with their fd hints (the warm
// path tries them before listing any open files), and gives them back.
func TestBorrowCarriesHints(t *testing.T) {
	tab, e := selfEntry(t)
	dir := e.dir
	k7 := connKey{remote: netip.MustParseAddrPort("127.0.0.1:7")}
	k9 := connKey{remote: netip.MustParseAddrPort("127.0.0.1:9")}
	tab.remember(e, 7, k7)
	tab.remember(e, 9, k9)
	tab.ended(k9)
	var cands [candidates]candidate
	n := tab.borrow(&cands)
	// The ended connection's fd first, then the two after the highest
	// recent one, the recent ones, the open ones (7, already there).
	if n != 1 || cands[0].e != e || !slices.Equal(cands[0].hints(), []int{9, 10, 11, 7}) {
		t.Fatalf("borrowed %d: %+v", n, cands[0])
	}
	tab.release(cands[:n])
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if e.refs != 0 || e.dir != dir {
		t.Fatalf("after release: refs %d dir %d", e.refs, e.dir)
	}
}

// Where a program's sockets were found orders the guesses for its next
// one: a program that closes one connection and opens the next before the
// first's end reaches us reuses the number, so its recent numbers come
// first; one that opens several at once takes the numbers past its highest,
// so those come first. Either way every guess is still tried.
func TestBorrowFollowsHabit(t *testing.T) {
	tab, e := selfEntry(t)
	key := func(port uint16) connKey {
		return connKey{remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}
	}
	hints := func() []int {
		var cands [candidates]candidate
		n := tab.borrow(&cands)
		defer tab.release(cands[:n])
		if n != 1 || cands[0].e != e {
			t.Fatalf("borrowed %d", n)
		}
		return slices.Clone(cands[0].hints())
	}
	tab.remember(e, 7, key(1))
	if h := hints(); !slices.Equal(h, []int{8, 9, 7}) {
		t.Fatalf("first connection: hints %v, want [8 9 7]", h)
	}
	// Its next connection on the same number, the first not ended yet.
	tab.remember(e, 7, key(2))
	if h := hints(); !slices.Equal(h, []int{7, 8, 9}) {
		t.Fatalf("reusing: hints %v, want [7 8 9]", h)
	}
	// Then one past the highest: opening several at once.
	tab.remember(e, 8, key(3))
	if h := hints(); !slices.Equal(h, []int{9, 10, 8, 7}) {
		t.Fatalf("opening several: hints %v, want [9 10 8 7]", h)
	}
	// A freed number found tells nothing of the habit, and comes first.
	tab.ended(key(3))
	tab.remember(e, 8, key(4))
	tab.ended(key(1))
	if h := hints(); !slices.Equal(h, []int{7, 9, 10, 8}) {
		t.Fatalf("after a freed number: hints %v, want [7 9 10 8]", h)
	}
}

// A connection that ends hands its fd number to the cache: the program's
// next connection is tried there first, and the ended one is no longer
// counted as open.
func TestEndedFreesFD(t *testing.T) {
	bin := self(t)
	ln := listen(t, "tcp4", "127.0.0.1:0")
	r := New()
	defer r.Close()
	a := NewAsync(r, 1, 0)
	defer a.Close()
	_, _, local := startChild(t, bin, "hold", []string{ln.Addr().String()})
	conn := acceptFrom(t, ln, local)
	f := a.Start(conn.LocalAddr(), conn.RemoteAddr())
	p, ok := f.Wait(t.Context())
	if !ok || !p.Known() {
		t.Fatalf("lookup: %+v %v", p, ok)
	}
	tab := r.os.(*linuxResolver).procs
	tab.mu.Lock()
	e := tab.recent[0]
	open, freed, live := slices.Clone(e.open), slices.Clone(e.freed), len(tab.live)
	tab.mu.Unlock()
	if len(open) != 1 || len(freed) != 0 || live != 1 {
		t.Fatalf("before End: open %v freed %v live %d", open, freed, live)
	}
	f.End()
	f.End()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	if len(e.open) != 0 || !slices.Equal(e.freed, open) || len(tab.live) != 0 {
		t.Fatalf("after End: open %v freed %v live %d, want freed %v", e.open, e.freed, len(tab.live), open)
	}
}
