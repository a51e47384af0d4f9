package procinfo

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The kernel's fdinfo of an epoll instance, as recorded from a real one,
// with lines that are not registrations and malformed ones mixed in.
func TestParseEpollInfo(t *testing.T) {
	const info = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n" +
		"tfd:        4 events:       1f data:                4  pos:0 ino:145aab7 sdev:9\n" +
		"tfd:        5 events:       1f data:                5  pos:0 ino:145aab8 sdev:9\n" +
		"tfd:       12 events:   80000019 data:     7f00aa001234  pos:0 ino:0 sdev:9\n" + // no inode
		"tfd: x events: 1 data: 1 pos:0 ino:10 sdev:9\n" + // not a number
		"tfd:        6 events: 1 data: 6 pos:0 ino:zz sdev:9\n" + // not hex
		"tfd:        7 events: 1 data: 7 pos:0\n" + // no ino field
		"tfd:      123 events:       19 data:              7b  pos:0 ino:ffffffffffffffff sdev:8\n"
	byIno := map[uint64]int{}
	if n := parseEpollInfo([]byte(info), byIno); n != 3 {
		t.Fatalf("%d registrations, want 3: %v", n, byIno)
	}
	want := map[uint64]int{0x145aab7: 4, 0x145aab8: 5, 0xffffffffffffffff: 123}
	if len(byIno) != len(want) {
		t.Fatalf("index %v, want %v", byIno, want)
	}
	for ino, fd := range want {
		if byIno[ino] != fd {
			t.Fatalf("index %v, want %v", byIno, want)
		}
	}
	for _, bad := range []string{"", "tfd:", "tfd:  4", "tfd: 4 ino:", "tfd: 4 ino:12345678901234567 x", "xtfd: 4 events: 1 ino:5"} {
		if _, _, ok := parseTFDLine([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// holdMany starts a child holding n connections to ln and returns its pid
// and the accepted ends by the child's address.
func holdMany(t *testing.T, ln net.Listener, n int) (int, map[string]net.Conn) {
	t.Helper()
	cmd, _, line := startChild(t, self(t), "holdmany", []string{ln.Addr().String(), strconv.Itoa(n)})
	addrs := strings.Fields(line)
	if len(addrs) != n {
		t.Fatalf("child: %q", line)
	}
	conns := map[string]net.Conn{}
	for range n {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		conns[c.RemoteAddr().String()] = c
	}
	for _, a := range addrs {
		if conns[a] == nil {
			t.Fatalf("no connection from %s", a)
		}
	}
	return cmd.Process.Pid, conns
}

// A Go program waits on its sockets with epoll: once it is cached, the
// lookups of all its other connections are answered from one read of its
// epoll instance's fdinfo, on the caller's goroutine, with no scan.
func TestEpollIndexAnswersABurst(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	pid, conns := holdMany(t, ln, 16)
	r := New()
	defer r.Close()
	var first net.Conn
	for _, c := range conns {
		first = c
		break
	}
	if p := r.Lookup(first.LocalAddr(), first.RemoteAddr()); p.PID != pid {
		t.Fatalf("first lookup: %+v, want pid %d", p, pid)
	}
	// The first lookup's listing may have read the other sockets' links
	// (the map's order picks any connection as the first): forgotten, so
	// that the burst below is the index's to answer.
	tab := r.os.(*linuxResolver).procs
	tab.mu.Lock()
	e := tab.recent[0]
	tab.mu.Unlock()
	e.snapMu.Lock()
	e.resetSnapshot(0)
	e.snapMu.Unlock()
	// One quick lookup rereads the index; the rest of the burst, at once,
	// finds its sockets in what that read. (Lookups that met a reread
	// under way would not wait for it: they leave it to a full lookup.)
	var second net.Conn
	for _, c := range conns {
		if c != first {
			second = c
			break
		}
	}
	l2, r2 := second.LocalAddr().(*net.TCPAddr).AddrPort(), second.RemoteAddr().(*net.TCPAddr).AddrPort()
	if p, ok := r.Quick(l2, r2); !ok || p.PID != pid {
		t.Fatalf("%s: quick %+v %v, want pid %d", r2, p, ok, pid)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			l, rm := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
			p, ok := r.Quick(l, rm)
			if !ok || p.PID != pid {
				t.Errorf("%s: quick %+v %v, want pid %d", rm, p, ok, pid)
			}
		})
	}
	wg.Wait()
	if st := r.Stats(); st.FullScans != 1 {
		t.Fatalf("stats %+v: want one scan (the first lookup)", st)
	}
	e.ep.mu.Lock()
	defer e.ep.mu.Unlock()
	if len(e.ep.files) == 0 || len(e.ep.byIno) < len(conns) {
		t.Fatalf("epoll index of the child: %d files, %d sockets; want its %d connections", len(e.ep.files), len(e.ep.byIno), len(conns))
	}
}

// The index is a hint: an fd it names that does not hold the socket (a
// stale or forged entry) is not believed, and the socket's real holder,
// another process, is the answer.
func TestEpollIndexConfirmed(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	pidA, connsA := holdMany(t, ln, 4)
	pidB, connsB := holdMany(t, ln, 1)
	r := New()
	defer r.Close()
	l := r.os.(*linuxResolver)
	var b net.Conn
	for _, c := range connsB {
		b = c
	}
	if p := r.Lookup(b.LocalAddr(), b.RemoteAddr()); p.PID != pidB {
		t.Fatalf("B: %+v, want pid %d", p, pidB)
	}
	for _, a := range connsA { // the first scans, the others read A's index
		if p := r.Lookup(a.LocalAddr(), a.RemoteAddr()); p.PID != pidA {
			t.Fatalf("A: %+v, want pid %d", p, pidA)
		}
	}
	// A is the most recent program: tried first. Its index is made to
	// claim B's socket on one of A's own fds.
	ans, err := l.diag(diagQuery{src: b.RemoteAddr().(*net.TCPAddr).AddrPort(), dst: b.LocalAddr().(*net.TCPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	l.procs.mu.Lock()
	e := l.procs.recent[0]
	l.procs.mu.Unlock()
	if e.pid != pidA {
		t.Fatalf("most recent is %d, want A %d", e.pid, pidA)
	}
	e.ep.find(e.dir, 1, true, true) // read A's epoll instances (no socket has inode 1)
	e.ep.mu.Lock()
	if len(e.ep.byIno) == 0 {
		e.ep.mu.Unlock()
		t.Fatal("A has no epoll index")
	}
	var aFD int
	for _, fd := range e.ep.byIno {
		aFD = fd
		break
	}
	e.ep.byIno[uint64(ans.inode)] = aFD
	e.ep.mu.Unlock()
	for range 2 {
		bl, br := b.LocalAddr().(*net.TCPAddr).AddrPort(), b.RemoteAddr().(*net.TCPAddr).AddrPort()
		if p, ok := r.Quick(bl, br); ok && p.PID != pidB {
			t.Fatalf("quick with a forged index: %+v, want B %d or no answer", p, pidB)
		}
		if p := r.Lookup(b.LocalAddr(), b.RemoteAddr()); p.PID != pidB {
			t.Fatalf("lookup with a forged index: %+v, want B %d", p, pidB)
		}
	}
	e.ep.mu.Lock()
	defer e.ep.mu.Unlock()
	if fd, ok := e.ep.byIno[uint64(ans.inode)]; ok && fd == aFD {
		t.Fatal("the forged entry stayed in A's index")
	}
}

// A program with more files than epollSmall: its index is reread only
// when its remembered fds fail (in place of a listing), and every one of
// its connections is still found without a second scan.
func TestEpollIndexLarge(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	pid, conns := holdMany(t, ln, epollSmall+44)
	r := New()
	defer r.Close()
	for _, c := range conns {
		if p := r.Lookup(c.LocalAddr(), c.RemoteAddr()); p.PID != pid {
			t.Fatalf("%s: %+v, want pid %d", c.RemoteAddr(), p, pid)
		}
	}
	if st := r.Stats(); st.FullScans != 1 {
		t.Fatalf("stats %+v: want one scan (the first lookup)", st)
	}
	tab := r.os.(*linuxResolver).procs
	tab.mu.Lock()
	e := tab.recent[0]
	tab.mu.Unlock()
	if e.ep.small() {
		t.Fatal("the index of a program with more than epollSmall sockets is small")
	}
}
