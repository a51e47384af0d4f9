package procinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A real child process connects over loopback (IPv4 and IPv6); the lookup
// of the accepted connection names exactly that child.
func TestDarwinLookupChild(t *testing.T) {
	exe := self(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln := listen(t, "tcp", addr)
			cmd, _, _ := startChild(t, exe, "hold", []string{ln.Addr().String()})
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
