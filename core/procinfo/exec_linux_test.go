package procinfo

import (
	"bufio"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"porthole/internal/childproc"
)

// TestLookupAfterExec: a process that connected, was looked up (and so
// cached), then exec'd another program, which connects: the second
// connection is the new program's, never named for the old one (the
// cached /proc/<pid> directory outlives the exec).
func TestLookupAfterExec(t *testing.T) {
	bash := childproc.Need(t, "bash", "the exec test runs a bash script")
	ln := listen(t, "tcp4", "127.0.0.1:0")
	addr := ln.Addr().String()
	host, port, _ := strings.Cut(addr, ":")
	bin := self(t)
	// bash connects (fd 3, kept across the exec), says so, waits for a
	// line, then becomes the test binary in mode hold, which connects too.
	script := `exec 3<>/dev/tcp/` + host + `/` + port + `; echo first; read x; ` +
		`exec env ` + childEnv + `=hold ` + childArgsEnv + `=` + addr + ` "$0" -test.run='^$'`
	cmd := exec.Command(bash, "-c", script, bin)
	stdin, out := childproc.Pipes(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait() // told to go by closing stdin
	})
	lines := bufio.NewReader(out)

	r := New()
	defer r.Close()
	c1, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c1.Close() }()
	if _, err := lines.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p1 := r.Lookup(c1.LocalAddr(), c1.RemoteAddr())
	if p1 == nil || p1.PID != cmd.Process.Pid || filepath.Base(p1.Path) != "bash" {
		t.Fatalf("before exec: %+v, want bash with pid %d", p1, cmd.Process.Pid)
	}

	// Two lookups of connections accepted before one exec check began
	// share it: the second reads no executable link.
	l1, r1 := addrPorts(t, c1)
	since := r.Mark()
	if p, ok := r.Quick(l1, r1); !ok || p.PID != cmd.Process.Pid {
		t.Fatalf("quick before exec: %+v %v", p, ok)
	}
	if p, ok := r.QuickSince(l1, r1, since); !ok || p.PID != cmd.Process.Pid || filepath.Base(p.Path) != "bash" {
		t.Fatalf("shared quick before exec: %+v %v", p, ok)
	}
	if n := r.Stats().SharedExecChecks; n != 1 {
		t.Fatalf("shared exec checks: %d, want 1", n)
	}

	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Close() }()
	if _, err := lines.ReadString('\n'); err != nil { // the child's local address
		t.Fatal(err)
	}
	// The checks made before the exec serve no connection accepted after
	// it: the quick path (the proxy's) never names bash either.
	l2, r2 := addrPorts(t, c2)
	if p, ok := r.QuickSince(l2, r2, r.Mark()); ok && (p.PID != cmd.Process.Pid || p.Path != bin) {
		t.Fatalf("quick after exec: %+v, want %s with pid %d (never the old bash)", p, bin, cmd.Process.Pid)
	}
	p2 := r.Lookup(c2.LocalAddr(), c2.RemoteAddr())
	if p2 == nil || p2.PID != cmd.Process.Pid || p2.Path != bin {
		t.Fatalf("after exec: %+v, want %s with pid %d (never the old bash)", p2, bin, cmd.Process.Pid)
	}
}

// addrPorts is c's local and remote addresses, as Quick takes them.
func addrPorts(t *testing.T, c net.Conn) (local, remote netip.AddrPort) {
	t.Helper()
	l, lok := addrPort(c.LocalAddr())
	r, rok := addrPort(c.RemoteAddr())
	if !lok || !rok {
		t.Fatalf("not TCP: %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	return l, r
}
