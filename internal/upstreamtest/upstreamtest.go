// Package upstreamtest runs real upstream proxies for the tests of
// upstream exits: tinyproxy (HTTP) and microsocks (SOCKS5), the Debian
// packages build/deps.sh installs, as child processes on loopback. A test
// is skipped when the program is not installed. Only tests import it.
package upstreamtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"porthole/internal/childproc"
	"porthole/internal/freeport"
)

// wait bounds the start of a proxy and its end after a kill.
const wait = 20 * time.Second

// Proxy is a running upstream proxy.
type Proxy struct {
	Addr string // 127.0.0.1:port
	URL  string // http://127.0.0.1:port or socks5://127.0.0.1:port
	name string
	args []string // to start it again on the same port
	proc *childproc.Proc
}

// Tinyproxy starts tinyproxy on a free loopback port; user and pass, if
// not empty, are its Basic credentials. Every CONNECT port is allowed.
// Tinyproxy does not relay a half-close: when the client's side of a
// CONNECT ends (CloseWrite), it sends what it holds and closes both, so
// an echo still on its way back is cut (the client reads EOF early). No
// setting changes that; a test that half-closes wants another exit.
func Tinyproxy(t testing.TB, user, pass string) *Proxy {
	t.Helper()
	path := need(t, "tinyproxy")
	addr := freeport.Loopback(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf("Port %s\nListen 127.0.0.1\nTimeout 600\nMaxClients 400\nLogLevel Warning\nDisableViaHeader Yes\n", port)
	if user != "" {
		conf += fmt.Sprintf("BasicAuth %s %s\n", user, pass)
	}
	file := filepath.Join(t.TempDir(), "tinyproxy.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: addr, URL: "http://" + addr, name: path, args: []string{"-d", "-c", file}}
	p.Start(t)
	return p
}

// Microsocks starts microsocks on a free loopback port; user and pass, if
// not empty, are its RFC 1929 credentials.
func Microsocks(t testing.TB, user, pass string) *Proxy {
	t.Helper()
	path := need(t, "microsocks")
	addr := freeport.Loopback(t)
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-i", "127.0.0.1", "-p", port}
	if user != "" {
		args = append(args, "-u", user, "-P", pass)
	}
	p := &Proxy{Addr: addr, URL: "socks5://" + addr, name: path, args: args}
	p.Start(t)
	return p
}

func need(t testing.TB, prog string) string {
	t.Helper()
	return childproc.Need(t, prog, "build/deps.sh installs it")
}

// Start runs the proxy (again, after Kill) and waits until it accepts.
func (p *Proxy) Start(t testing.TB) {
	t.Helper()
	p.proc = childproc.Start(t, filepath.Base(p.name), wait, exec.Command(p.name, p.args...))
	deadline := time.Now().Add(wait)
	for range int(wait / (5 * time.Millisecond)) {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			_ = c.Close() // only asking whether it listens
			return
		}
		select {
		case <-p.proc.Exited():
			t.Fatalf("%s ended at start: %v", p.name, p.proc.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("%s does not listen on %s within %v", p.name, p.Addr, wait)
}

// Kill ends the proxy with SIGKILL and waits for it: its connections
// are reset by the kernel, its port refuses.
func (p *Proxy) Kill(t testing.TB) {
	t.Helper()
	p.proc.Kill(t)
}
