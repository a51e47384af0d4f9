package e2e

// Several exits end to end: two porthole-exit processes, a real tinyproxy
// (HTTP) and a real microsocks (SOCKS5) as exits of one engine; each
// alone with curl, failover when the exit in use is killed under load,
// the fastest policy behind delaying relays, refused credentials of each
// kind, and the upstream proxies' refusals in the client's protocol.

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/internal/connecttest"
	"porthole/internal/curltest"
	"porthole/internal/upstreamtest"
)

// TestExitsEachKindWithCurl selects each of four exits by hand and runs
// curl through Porthole (plain HTTP, HTTPS through CONNECT, SOCKS5 with
// the name resolved remotely): each request goes through the selected
// exit, and its record names it.
func TestExitsEachKindWithCurl(t *testing.T) {
	leakCheck(t)
	curltest.Need(t)
	bin := buildExitProgram(t)
	a, b := startExitProc(t, bin), startExitProc(t, bin)
	hp := upstreamtest.Tinyproxy(t, "", "")
	sp := upstreamtest.Microsocks(t, "", "")
	v := newExitsEnv(t, outbound.PolicyManual,
		portholeExit("a", a.url, e2eToken), portholeExit("b", b.url, e2eToken),
		upstreamExit("office", outbound.KindHTTP, hp.URL, "", ""),
		upstreamExit("ssh", outbound.KindSOCKS5, sp.URL, "", ""))
	waitExits(t, v, "all up", allUp)

	proxyHTTP := "http://" + v.proxy()
	web := v.web.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(web)
	tlsAddr := v.tls.Listener.Addr().String()
	for _, name := range []string{"a", "b", "office", "ssh"} {
		if err := v.eng.SelectExit(name); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			what   string
			args   []string
			target string
		}{
			{"http", []string{"-x", proxyHTTP, v.web.URL + "/hello"}, web},
			{"https", []string{"-x", proxyHTTP, "--cacert", v.caFile, v.tls.URL + "/hello"}, tlsAddr},
			{"socks5h", []string{"-x", "socks5h://" + v.proxy(), "http://localhost:" + port + "/hello"}, "localhost:" + port},
		}
		for _, tc := range cases {
			before := v.ev.known()
			out, err := curltest.Run(t, tc.args...)
			if err != nil || out != "hello" {
				t.Fatalf("exit %s, %s: %q, %v; want \"hello\"", name, tc.what, out, err)
			}
			infos, err := v.ev.newClosed(before, 1)
			if err != nil {
				t.Fatal(err)
			}
			if rec := infos[0]; rec.Exit != name || rec.Target != tc.target || rec.Route != registry.RouteTunnel || rec.Down == 0 {
				t.Errorf("exit %s, %s: record %s → %s via %q (%s), %d bytes down", name, tc.what, rec.Proto, rec.Target, rec.Exit, rec.Route, rec.Down)
			}
		}
	}
	v.finish(t)
}

// TestExitsFailover kills the exit in use (SIGKILL) while connections
// stream through it: they end with "exit lost: a", connections opened
// after the kill go through the next exit and none fails, checksummed
// transfers on it are exact; when the first exit is back it is healthy
// and used again.
func TestExitsFailover(t *testing.T) {
	leakCheck(t)
	bin := buildExitProgram(t)
	a, b := startExitProc(t, bin), startExitProc(t, bin)
	hp := upstreamtest.Tinyproxy(t, "", "")
	// The kill is seen at once (the kernel closes a's sockets), not by
	// the keepalive: pings once a second, so that b's session is not
	// declared dead by a loaded machine's pauses, which would send the
	// test's connections to the office exit.
	v := newExitsEnv(t, outbound.PolicyFailover,
		withPing(portholeExit("a", a.url, e2eToken), time.Second), withPing(portholeExit("b", b.url, e2eToken), time.Second),
		upstreamExit("office", outbound.KindHTTP, hp.URL, "", ""))
	waitExits(t, v, "all up", allUp)

	flows := startFlows(t, v, 8)
	killed := time.Now()
	a.proc.Kill(t)

	// New connections right after the kill, one after the other, while
	// the old ones are still ending.
	var firstOK time.Duration
	for i := range 20 {
		p := lcProto(i % 2)
		c, lc, err := openConn(v.proxy(), p, v.origin.echo)
		if err != nil {
			t.Fatalf("connection %d after the kill: %v", i, err)
		}
		if err := echoCheck(c, c, patternBytes(32<<10), c.CloseWrite); err != nil {
			t.Errorf("connection %d after the kill: %v", i, err)
		}
		if i == 0 {
			firstOK = time.Since(killed)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if info := lastClosed(t, v, lc.laddr, v.origin.echo); info.Exit != "b" || info.Err != nil {
			t.Errorf("connection %d after the kill: via %q, ended with %v; want b, clean", i, info.Exit, info.Err)
		}
	}
	t.Logf("first connection after the kill through in %v (from the kill, the echo included)", firstOK.Round(time.Microsecond))

	for i, info := range endFlows(t, v, flows) {
		var lost *outbound.ExitLostError
		if !errors.As(info.Err, &lost) || lost.Name != "a" || info.Exit != "a" || !strings.HasPrefix(info.Err.Error(), "exit lost: a") {
			t.Errorf("flow %d (%s, via %q) ended with %v, want exit lost: a", i, info.Target, info.Exit, info.Err)
		}
	}

	// Checksummed transfers on the survivor, both ways at once.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sinkTransfer(v, lcProto(i%2), 4<<20); err != nil {
				t.Errorf("transfer %d on the survivor: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n := closedExits(v, v.raw.sink, 4); n["b"] != 4 {
		t.Errorf("transfers on the survivor went %v, want all 4 via b", n)
	}

	st := waitExits(t, v, "a down", exitIs("a", outbound.ExitDown))
	t.Logf("while a is down: %s", exitsText(st))
	a.start(t)
	waitExits(t, v, "a back and in use", func(st outbound.GroupState) bool {
		return exitIs("a", outbound.ExitUp)(st) && st.Active == "a"
	})
	checkVia(t, v, lcConnect, 32<<10, "a") // with a back
	v.finish(t)
}

// sinkTransfer sends n pattern bytes to the sink and checks its sha256
// and count.
func sinkTransfer(v *e2eEnv, p lcProto, n int64) error {
	c, _, err := openConn(v.proxy(), p, v.raw.sink)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := writePattern(c, 0, n); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	sum, got, err := readSum(c)
	if err != nil {
		return err
	}
	if got != n || sum != patternSum(0, n) {
		return errors.New("the sink's checksum or count differs")
	}
	return nil
}

// TestExitsFastest puts two exits behind relays that delay each way:
// about 10 ms and 60 ms of round trip. The fastest policy picks the
// quick one, moves when the delays swap (after the hold), and stays put
// when they are equal.
func TestExitsFastest(t *testing.T) {
	leakCheck(t)
	bin := buildExitProgram(t)
	a, b := startExitProc(t, bin), startExitProc(t, bin)
	ra := startRelay(t, a.addr, 5*time.Millisecond)
	rb := startRelay(t, b.addr, 30*time.Millisecond)
	v := newExitsEnv(t, outbound.PolicyFastest,
		portholeExit("a", "ws://"+ra.addr+e2ePath, e2eToken), portholeExit("b", "ws://"+rb.addr+e2ePath, e2eToken))
	st := waitExits(t, v, "a in use, b slower", func(st outbound.GroupState) bool {
		return allUp(st) && st.Active == "a" && st.Exits[1].Latency > 40*time.Millisecond
	})
	t.Logf("first: %s", exitsText(st))
	checkVia(t, v, lcSOCKS5, 1<<10, "a")

	ra.setDelay(30 * time.Millisecond)
	rb.setDelay(5 * time.Millisecond)
	st = waitExits(t, v, "b in use", func(st outbound.GroupState) bool { return st.Active == "b" })
	t.Logf("swapped: %s", exitsText(st))
	checkVia(t, v, lcSOCKS5, 1<<10, "b")

	// Equal delays: whichever is in use stays, through many measures.
	ra.setDelay(15 * time.Millisecond)
	rb.setDelay(15 * time.Millisecond)
	// From when both measures show the new delays, not during the change.
	settled := func(d time.Duration) bool { return d >= 28*time.Millisecond && d < 45*time.Millisecond }
	waitExits(t, v, "both at the equal delay", func(st outbound.GroupState) bool {
		return settled(st.Exits[0].Latency) && settled(st.Exits[1].Latency)
	})
	snap, w := v.eng.SubscribeExits()
	defer w.Close()
	moves, states := 0, 0
	active := snap.Active
	watch := time.NewTimer(3 * time.Second) // about 30 pings of each exit
	defer watch.Stop()
	for done := false; !done; {
		select {
		case st, ok := <-w.C:
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			states++
			if st.Active != active {
				moves++
				t.Logf("moved: %s", exitsText(st))
				active = st.Active
			}
		case <-watch.C:
			done = true
		}
	}
	t.Logf("equal delays: %d states, %d moves; last %s", states, moves, exitsText(v.exitsState()))
	if moves != 0 {
		t.Errorf("with equal delays the pick moved %d times", moves)
	}
	v.finish(t)
}

func (v *e2eEnv) exitsState() outbound.GroupState {
	st, _ := v.eng.Exits()
	return st
}

// checkVia echoes n bytes over a connection of protocol p and checks that
// the exit want carried it.
func checkVia(t *testing.T, v *e2eEnv, p lcProto, n int, want string) {
	t.Helper()
	c, lc, err := openConn(v.proxy(), p, v.origin.echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(c, c, patternBytes(n), c.CloseWrite); err != nil {
		t.Error(err)
	}
	_ = c.Close()
	if info := lastClosed(t, v, lc.laddr, v.origin.echo); info.Exit != want {
		t.Errorf("via %q, want %s", info.Exit, want)
	}
}

// TestExitsWrongCredentials: an exit server refusing the token, an HTTP
// proxy and a SOCKS5 proxy refusing the password. Each exit's state says
// so, connections fail at once with the client's protocol's answer, and
// the exits are not asked again for every connection (backoff).
func TestExitsWrongCredentials(t *testing.T) {
	leakCheck(t)
	bin := buildExitProgram(t)
	x := startExitProc(t, bin)
	hp := upstreamtest.Tinyproxy(t, "alice", "right")
	sp := upstreamtest.Microsocks(t, "bob", "right")
	rx, rh, rs := startRelay(t, x.addr, 0), startRelay(t, hp.Addr, 0), startRelay(t, sp.Addr, 0)
	v := newExitsEnv(t, outbound.PolicyManual,
		portholeExit("home", "ws://"+rx.addr+e2ePath, "wrong-token"),
		upstreamExit("office", outbound.KindHTTP, "http://"+rh.addr, "alice", "wrong"),
		upstreamExit("ssh", outbound.KindSOCKS5, "socks5://"+rs.addr, "bob", "wrong"))
	st := waitExits(t, v, "all refused", func(st outbound.GroupState) bool {
		for _, x := range st.Exits {
			if x.State != outbound.ExitAuthFailed {
				return false
			}
		}
		return true
	})
	t.Logf("states: %s", exitsText(st))

	for _, r := range []struct {
		name    string
		relay   *tcpRelay
		message string
	}{
		{"home", rx, "refused the credentials"},
		{"office", rh, "upstream proxy refused the credentials"},
		{"ssh", rs, "upstream proxy refused the credentials"},
	} {
		if err := v.eng.SelectExit(r.name); err != nil {
			t.Fatal(err)
		}
		before := r.relay.accepted.Load()
		for range 10 {
			status, body, err := connectAnswer(v.proxy(), v.origin.echo)
			if err != nil || status != http.StatusBadGateway || !strings.Contains(body, r.message) || !strings.Contains(body, "exit "+r.name) {
				t.Errorf("%s: CONNECT answered %d %q, %v; want 502 naming the exit and %q", r.name, status, body, err, r.message)
			}
			if _, code, err := socks5Code(v.proxy(), v.origin.echo); err != nil || code != 0x01 {
				t.Errorf("%s: SOCKS5 answered %#x, %v; want 0x01", r.name, code, err)
			}
		}
		if n := r.relay.accepted.Load() - before; n > 4 {
			t.Errorf("%s: 20 connections with refused credentials made %d connections to the exit", r.name, n)
		}
	}
	v.finish(t)
}

// connectAnswer sends a CONNECT and returns the answer's status and body.
func connectAnswer(proxyAddr, target string) (int, string, error) {
	c, _, resp, err := connecttest.Dial(proxyAddr, target)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), errors.Join(err, resp.Body.Close())
}

// TestExitsUpstreamRefusals: a target the upstream proxy cannot reach is
// answered in the client's protocol: the SOCKS5 proxy's reply code passed
// on (0x05 connection refused) and 502 to HTTP clients; tinyproxy's
// refusal a 502. The exits stay healthy.
func TestExitsUpstreamRefusals(t *testing.T) {
	leakCheck(t)
	hp := upstreamtest.Tinyproxy(t, "", "")
	sp := upstreamtest.Microsocks(t, "", "")
	v := newExitsEnv(t, outbound.PolicyManual,
		upstreamExit("office", outbound.KindHTTP, hp.URL, "", ""),
		upstreamExit("ssh", outbound.KindSOCKS5, sp.URL, "", ""))
	waitExits(t, v, "all up", allUp)
	closed := v.raw.closedAt
	for _, name := range []string{"office", "ssh"} {
		if err := v.eng.SelectExit(name); err != nil {
			t.Fatal(err)
		}
		status, body, err := connectAnswer(v.proxy(), closed)
		if err != nil || status != http.StatusBadGateway {
			t.Errorf("%s: CONNECT to a closed port: %d %q, %v; want 502", name, status, body, err)
		}
		t.Logf("%s: CONNECT to a closed port: %d %s", name, status, strings.TrimSpace(body))
		_, code, err := socks5Code(v.proxy(), closed)
		want := byte(0x01) // tinyproxy's 500 says no more than "failed"
		if name == "ssh" {
			want = 0x05
		}
		if err != nil || code != want {
			t.Errorf("%s: SOCKS5 to a closed port: %#x, %v; want %#x", name, code, err, want)
		}
	}
	if st := v.exitsState(); !allUp(st) {
		t.Errorf("refused targets took exits down: %s", exitsText(st))
	}
	v.finish(t)
}
