package inbound_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"porthole/core"
	"porthole/core/procinfo"
	"porthole/core/registry"
	"porthole/internal/childproc"
	"porthole/internal/connecttest"
)

// Real programs through the proxy: the registry must record exactly the
// program that opened each connection (the inspector's App column).

// childClientEnv makes the test binary a client of the proxy (see
// TestProcessChild): "MODE PROXY TARGET N".
const childClientEnv = "PORTHOLE_PROC_CHILD"

// TestProcessChild is not a test: run as a child with childClientEnv set,
// it opens N connections through the proxy at once, each doing one
// exchange (three on one connection in http mode), prints "local ADDR" for
// each, then holds them until stdin closes. Mode connect-exit sends a
// CONNECT and exits at once.
func TestProcessChild(t *testing.T) {
	spec := os.Getenv(childClientEnv)
	if spec == "" {
		t.Skip("run as a child by the attribution tests")
	}
	f := strings.Fields(spec)
	mode, proxyAddr, target := f[0], f[1], f[2]
	n, _ := strconv.Atoi(f[3])
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = childExchange(mode, proxyAddr, target) })
	}
	wg.Wait()
	var out bytes.Buffer
	for i := range n {
		if errs[i] != nil {
			fmt.Fprintln(os.Stderr, "child:", errs[i])
			os.Exit(1)
		}
		fmt.Fprintf(&out, "local %s\n", conns[i].LocalAddr())
	}
	fmt.Fprintln(&out, "ready")
	_, _ = os.Stdout.Write(out.Bytes())
	if mode == "connect-exit" {
		os.Exit(0) // without closing anything
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	os.Exit(0) // not through the test framework: its output is not ours
}

func childExchange(mode, proxyAddr, target string) (net.Conn, error) {
	if mode != "http" {
		target = strings.Split(target, ",")[0] // one tunnel, one target
	}
	c, br, err := childDial(mode, proxyAddr, target)
	if err != nil {
		return nil, err
	}
	get := func(url string) error {
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", url, target); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != "hello" {
			return fmt.Errorf("GET %s: %q %v", url, body, err)
		}
		return nil
	}
	switch mode {
	case "connect":
		err = get("/hello")
	case "connect-exit":
		// Written out, not connecttest.Dial: the child exits without
		// waiting for the answer, perhaps before the proxy looks up who
		// asked (TestProcessClientExits).
		if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
			return nil, err
		}
	case "http":
		// Keep-alive, one record per target: several records, one client
		// connection (and one process).
		for _, t := range strings.Split(target, ",") {
			if err = get("http://" + t + "/hello"); err != nil {
				break
			}
		}
	case "socks5":
		if err = socks5Connect(c, br, target); err == nil {
			err = get("/hello")
		}
	default:
		err = fmt.Errorf("mode %q", mode)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// childDial connects to the proxy, in mode connect through the tunnel's
// handshake; every read and write after it has waitTimeout.
func childDial(mode, proxyAddr, target string) (net.Conn, *bufio.Reader, error) {
	if mode == "connect" {
		c, br, resp, err := connecttest.Dial(proxyAddr, target)
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode != http.StatusOK {
			_ = c.Close()
			return nil, nil, fmt.Errorf("CONNECT: %s", resp.Status)
		}
		return c, br, c.SetDeadline(time.Now().Add(waitTimeout))
	}
	c, err := net.DialTimeout("tcp", proxyAddr, waitTimeout)
	if err != nil {
		return nil, nil, err
	}
	return c, bufio.NewReader(c), c.SetDeadline(time.Now().Add(waitTimeout))
}

func socks5Connect(c net.Conn, br *bufio.Reader, target string) error {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return err
	}
	req := []byte{5, 1, 0}
	if _, err := c.Write(req); err != nil {
		return err
	}
	var hello [2]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil || hello != [2]byte{5, 0} {
		return fmt.Errorf("socks5 hello: % x %v", hello, err)
	}
	req = []byte{5, 1, 0, 1}
	if ap.Addr().Is6() {
		req[3] = 4
	}
	req = append(req, ap.Addr().AsSlice()...)
	req = binary.BigEndian.AppendUint16(req, ap.Port())
	if _, err := c.Write(req); err != nil {
		return err
	}
	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil || head[1] != 0 {
		return fmt.Errorf("socks5 reply % x %v", head, err)
	}
	rest := 4 + 2
	if head[3] == 4 {
		rest = 16 + 2
	}
	_, err = io.ReadFull(br, make([]byte, rest))
	return err
}

// pyClient is the same client in Python (one connection).
const pyClient = `
import socket, struct, sys
mode, proxy, target = sys.argv[1], sys.argv[2], sys.argv[3]
def hp(s):
    h, p = s.rsplit(":", 1)
    return h.strip("[]"), int(p)
ph, pp = hp(proxy)
th, tp = hp(target)
fam = socket.AF_INET6 if ":" in ph else socket.AF_INET
if mode.endswith("-mapped"):
    fam, ph, mode = socket.AF_INET6, "::ffff:" + ph, mode[:-7]
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(20)
s.connect((ph, pp))
f = s.makefile("rb")
def head():
    code = f.readline().split()[1]
    n = 0
    while True:
        l = f.readline()
        if l.lower().startswith(b"content-length:"):
            n = int(l.split(b":")[1])
        if l in (b"\r\n", b""):
            return code, n
def get(url):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (url, target)).encode())
    code, n = head()
    body = f.read(n)
    assert code == b"200" and body == b"hello", (code, body)
if mode == "connect":
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    assert head()[0] == b"200"
    get("/hello")
elif mode == "http":
    get("http://%s/hello" % target)
elif mode == "socks5":
    s.sendall(b"\x05\x01\x00")
    assert f.read(2) == b"\x05\x00"
    if ":" in th:
        req = b"\x05\x01\x00\x04" + socket.inet_pton(socket.AF_INET6, th)
    else:
        req = b"\x05\x01\x00\x01" + socket.inet_aton(th)
    s.sendall(req + struct.pack(">H", tp))
    r = f.read(4)
    assert r[1] == 0, r
    f.read(18 if r[3] == 4 else 6)
    get("/hello")
name = s.getsockname()
if name[0].startswith("::ffff:") and "." in name[0]:
    name = (name[0][7:], name[1])
print("local " + ("[%s]:%d" % name[:2] if ":" in name[0] else "%s:%d" % name[:2]), flush=True)
print("ready", flush=True)
sys.stdin.read()
`

// client is a child process holding connections through the proxy.
type client struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	locals []string // its connections' local addresses
}

// startClient starts a client program (argv) and reads its "local" lines
// up to "ready".
func startClient(argv []string, env []string) (*client, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &client{cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go func() { _, _ = io.Copy(io.Discard, out) }() // ends with the child
			return c, nil
		}
		if a, ok := strings.CutPrefix(line, "local "); ok {
			c.locals = append(c.locals, a)
		}
	}
	_ = stdin.Close()
	err = cmd.Wait()
	return nil, fmt.Errorf("%v: no ready line (%v): %s", argv, err, stderr.String())
}

// stop lets the client go and waits for it.
func (c *client) stop() error {
	_ = c.stdin.Close()
	return c.cmd.Wait()
}

func goClient(mode, proxyAddr, target string, n int) (*client, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startClient([]string{exe, "-test.run=^TestProcessChild$"},
		[]string{childClientEnv + "=" + strings.Join([]string{mode, proxyAddr, target, strconv.Itoa(n)}, " ")})
}

// python is the system's Python (pyenv's shims would exec another path).
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return childproc.Need(t, "python3", "the Python client's attribution")
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// processOf waits for the Process event of the record(s) from client
// address local ("" for any) and returns their processes, n of them.
func (v *env) processOf(t *testing.T, local string, n int) []*registry.Process {
	t.Helper()
	match := func(i registry.Info) bool { return local == "" || i.Client == local }
	evs := v.events.waitFor(t, fmt.Sprintf("%d Process event(s) of %q", n, local), func(evs []registry.Event) bool {
		return len(eventsOf(evs, registry.KindProcess, match)) >= n
	})
	var ps []*registry.Process
	for _, i := range eventsOf(evs, registry.KindProcess, match) {
		ps = append(ps, i.Process)
	}
	return ps
}

func wantProcess(t *testing.T, p *registry.Process, pid int, name, path string) {
	t.Helper()
	if !p.Known() || p.PID != pid || p.Name != name || p.Path != path {
		t.Fatalf("recorded %+v, want pid %d name %q path %s", p, pid, name, path)
	}
	if p.PPID != os.Getpid() && name != "curl" {
		t.Errorf("parent %d, want %d (the test)", p.PPID, os.Getpid())
	}
}

func attrEnv(t *testing.T, ipv string) (*env, string) {
	t.Helper()
	listen, network := "127.0.0.1:0", "tcp4"
	if ipv == "6" {
		if !hasIPv6() {
			t.Skip("no IPv6 loopback")
		}
		listen, network = "[::1]:0", "tcp6"
	}
	v := newEnv(t, func(c *core.Config) { c.Listen = listen })
	origin := newOrigin(t, network, originMux())
	return v, origin.Listener.Addr().String()
}

func TestProcessAttribution(t *testing.T) {
	py := python(t)
	pyPath := realPath(t, py)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe = realPath(t, exe)
	for _, ipv := range []string{"4", "6"} {
		for _, mode := range []string{"connect", "http", "socks5"} {
			t.Run("go/"+mode+"/ipv"+ipv, func(t *testing.T) {
				t.Parallel()
				v, target := attrEnv(t, ipv)
				records := 1
				if mode == "http" {
					// Keep-alive to three origins: three records, each
					// gets the process.
					for range 2 {
						target += "," + newOrigin(t, map[string]string{"4": "tcp4", "6": "tcp6"}[ipv], originMux()).Listener.Addr().String()
					}
					records = 3
				}
				c, err := goClient(mode, v.addr, target, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer c.stop()
				for _, p := range v.processOf(t, c.locals[0], records) {
					wantProcess(t, p, c.cmd.Process.Pid, filepath.Base(exe), exe)
				}
			})
			t.Run("python/"+mode+"/ipv"+ipv, func(t *testing.T) {
				t.Parallel()
				v, target := attrEnv(t, ipv)
				c, err := startClient([]string{py, "-c", pyClient, mode, v.addr, target}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.stop()
				wantProcess(t, v.processOf(t, c.locals[0], 1)[0], c.cmd.Process.Pid, "python3", pyPath)
			})
			t.Run("curl/"+mode+"/ipv"+ipv, func(t *testing.T) {
				t.Parallel()
				testCurlAttribution(t, ipv, mode)
			})
		}
	}
}

// testCurlAttribution runs curl through the proxy to an origin that holds
// the answer until the registry has recorded curl as the program.
func testCurlAttribution(t *testing.T, ipv, mode string) {
	curl := childproc.Need(t, "curl", "curl's attribution")
	curlPath := realPath(t, curl)
	v, _ := attrEnv(t, ipv)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "hello")
	})
	network := map[string]string{"4": "tcp4", "6": "tcp6"}[ipv]
	origin := newOrigin(t, network, mux)
	args := []string{"-q", "-sS", "--fail", "--max-time", "20", "-o", "/dev/null"}
	switch mode {
	case "connect":
		args = append(args, "-p", "-x", "http://"+v.addr)
	case "http":
		args = append(args, "-x", "http://"+v.addr)
	case "socks5":
		args = append(args, "--socks5", v.addr)
	}
	cmd := exec.Command(curl, append(args, origin.URL+"/hold")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := v.processOf(t, "", 1)[0]
	close(release)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl: %v: %s", err, stderr.String())
	}
	wantProcess(t, p, cmd.Process.Pid, "curl", curlPath)
}

// A client that exits right after sending its request: its record gets
// the program or "unknown", never another program.
func TestProcessClientExits(t *testing.T) {
	v, target := attrEnv(t, "4")
	v.noisy = true // the client vanishes mid-request
	for range 3 {
		c, err := goClient("connect-exit", v.addr, target, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		p := v.processOf(t, c.locals[0], 1)[0]
		if p.Known() && p.PID != c.cmd.Process.Pid {
			t.Fatalf("exited client %d recorded as %+v", c.cmd.Process.Pid, p)
		}
	}
}

// 200 connections from 20 processes at once: each recorded as its own
// process, no swaps.
func TestProcessManyClients(t *testing.T) {
	v, target := attrEnv(t, "4")
	const procs, each = 20, 10
	clients := make([]*client, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		mode := []string{"connect", "socks5"}[i%2]
		wg.Go(func() { clients[i], errs[i] = goClient(mode, v.addr, target, each) })
	}
	wg.Wait()
	owner := map[string]int{}
	for i, c := range clients {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer c.stop()
		for _, l := range c.locals {
			owner[l] = c.cmd.Process.Pid
		}
	}
	if len(owner) != procs*each {
		t.Fatalf("%d distinct client addresses, want %d", len(owner), procs*each)
	}
	evs := v.events.waitFor(t, "200 Process events", func(evs []registry.Event) bool {
		return len(eventsOf(evs, registry.KindProcess, nil)) >= procs*each
	})
	for _, i := range eventsOf(evs, registry.KindProcess, nil) {
		want, ok := owner[i.Client]
		if !ok {
			t.Fatalf("Process event for unknown client %s", i.Client)
		}
		if i.Process.PID != want {
			t.Errorf("%s: recorded %+v, want pid %d", i.Client, i.Process, want)
		}
	}
	st := v.e.ProcessStats()
	t.Logf("lookups %d, found %d, cache hits %d (%.0f%%), full scans %d", st.Lookups, st.Found, st.CacheHits, 100*st.HitRate(), st.FullScans)
}

// A client of another user (nobody) is attributed to it, with its user.
func TestProcessOtherUser(t *testing.T) {
	asNobody := childproc.AsNobody(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	py := python(t)
	v, target := attrEnv(t, "4")
	for _, mode := range []string{"connect", "connect-mapped"} {
		c, err := startClient(append(slices.Clip(asNobody), py, "-c", pyClient, mode, v.addr, target), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := v.processOf(t, c.locals[0], 1)[0]
		if err := c.stop(); err != nil {
			t.Fatal(err)
		}
		wantProcess(t, p, c.cmd.Process.Pid, "python3", realPath(t, py))
		if strconv.Itoa(p.UID) != nobody.Uid || p.User != "nobody" {
			t.Fatalf("%s: user %d %q, want nobody (%s)", mode, p.UID, p.User, nobody.Uid)
		}
	}
}

// With attribution off nothing is looked up and records carry no process.
func TestProcessLookupOff(t *testing.T) {
	v := newEnv(t, func(c *core.Config) { c.NoProcessLookup = true })
	v.checkHealthy(t)
	for _, ev := range v.events.snapshot() {
		if ev.Kind == registry.KindProcess || ev.Conn.Process != nil {
			t.Fatalf("attribution off, yet %s with process %+v", ev.Kind, ev.Conn.Process)
		}
	}
	if st := v.e.ProcessStats(); st != (procinfo.Stats{}) {
		t.Fatalf("stats %+v", st)
	}
}
