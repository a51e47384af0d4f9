package procinfo

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real child process connects over loopback (IPv4 and IPv6); the lookup
// of the accepted connection names exactly that child.
func TestDarwinLookupChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Skipf("listen %s: %v", addr, err)
			}
			defer ln.Close()

			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=hold", childArgsEnv+"="+ln.Addr().String())
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = stdin.Close()
				_ = cmd.Wait() // told to go; its status does not matter
			}()
			if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			r := New()
			defer r.Close()
			p := r.Lookup(c.LocalAddr(), c.RemoteAddr())
			if !p.Known() || p.PID != cmd.Process.Pid {
				t.Fatalf("got %+v, want pid %d", p, cmd.Process.Pid)
			}
			if want, _ := filepath.EvalSymlinks(exe); p.Path != exe && p.Path != want {
				t.Errorf("path %q, want %q", p.Path, exe)
			}
			if !strings.HasPrefix(filepath.Base(exe), p.Name) || p.UID != os.Getuid() || p.PPID != os.Getpid() {
				t.Errorf("got %+v", p)
			}
		})
	}
}
