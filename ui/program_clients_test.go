package ui

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// programClientsPython is a python3 client: a CONNECT through the proxy,
// then it reads until the stream ends.
const programClientsPython = `import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[2], sys.argv[2])).encode())
while s.recv(65536):
    pass
`

// startProgramClients runs real programs as the proxy's clients, so the
// App column and the Apps view show real programs' names: curl through
// CONNECT and through SOCKS5, and python3, each reading from origin (a
// stream of bytes with no HTTP: curl takes it as HTTP/0.9) until the test
// ends. It returns how many it started; a program that is not installed
// is left out.
func startProgramClients(t *testing.T, proxyAddr, origin string) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0 // the only OS these tests run programs on
	}
	ctx, cancel := context.WithCancel(context.Background())
	var cmds []*exec.Cmd
	t.Cleanup(func() {
		cancel() // kills them
		for _, c := range cmds {
			_ = c.Wait() // killed: the error says so
		}
	})
	start := func(name string, args ...string) {
		if _, err := exec.LookPath(name); err != nil {
			t.Logf("%s is not installed: not one of the clients", name)
			return
		}
		c := exec.CommandContext(ctx, name, args...)
		if err := c.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		cmds = append(cmds, c)
	}
	url := "http://" + origin + "/"
	start("curl", "-s", "-o", "/dev/null", "--http0.9", "--proxytunnel", "-x", "http://"+proxyAddr, url)
	start("curl", "-s", "-o", "/dev/null", "--http0.9", "-x", "socks5h://"+proxyAddr, url)
	start("python3", "-c", programClientsPython, proxyAddr, origin)
	return len(cmds)
}

// hasApps reports whether every name is the program of one of rows (a
// prefix: python3 runs as python3.11).
func hasApps(rows []*connRow, names ...string) bool {
	for _, n := range names {
		found := false
		for _, r := range rows {
			if r.Process.Known() && strings.HasPrefix(r.Process.Name, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
