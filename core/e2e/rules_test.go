package e2e

// Rules mode end to end: real clients (curl over HTTP, CONNECT and
// SOCKS5; hand-written clients where the exact answer matters) through an
// engine whose rule set decides, checked in the registry (route and rule)
// and at the exit (which streams it dialled).

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/internal/curltest"
)

func compileRules(t *testing.T, list []rules.Rule, opt rules.Options) *rules.Set {
	t.Helper()
	s, err := rules.Compile(list, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lastConn waits for the one connection opened since before to close and
// returns its record.
func (v *e2eEnv) lastConn(t *testing.T, before map[xid.ID]bool) registry.Info {
	t.Helper()
	infos, err := v.ev.newClosed(before, 1)
	if err != nil {
		t.Fatal(err)
	}
	return infos[0]
}

// checkRoute checks the record's route and rule and whether the exit
// carried it.
func (v *e2eEnv) checkRoute(t *testing.T, what string, info registry.Info, route registry.Route, ruleIndex int) {
	t.Helper()
	if info.Route != route || info.Rule.Index != ruleIndex {
		t.Errorf("%s: route %s, rule %q (index %d); want %s, index %d", what, info.Route, info.Rule, info.Rule.Index, route, ruleIndex)
	}
	atExit := v.exit().streamIDs()[info.ID.String()]
	if atExit != (route == registry.RouteTunnel) {
		t.Errorf("%s: route %s, but the exit dialled it: %v", what, route, atExit)
	}
}

func TestRulesEachMatcherWithCurl(t *testing.T) {
	// The origins are on loopback; names that resolve there without DNS:
	// localhost only, so names are told apart by case, dot and port.
	v := newE2E(t, e2eOptions{mode: outbound.ModeRules})
	webPort, tlsPort := portOf(t, v.web.Listener.Addr().String()), portOf(t, v.tls.Listener.Addr().String())
	set := compileRules(t, []rules.Rule{
		{Kind: "domain-keyword", Value: "blocked", Action: "reject"},     // 0
		{Kind: "port", Value: webPort + "-" + webPort, Action: "tunnel"}, // 1: HTTP origin via the exit...
		{Kind: "inbound", Value: "socks5", Action: "direct"},             // 2 (shadowed by 1 for the web port)
		{Kind: "ip-cidr", Value: "127.0.0.0/8", Action: "direct"},        // 3: ...HTTPS origin direct
		{Kind: "domain", Value: "LOCALHOST.", Action: "tunnel"},          // 4
		{Kind: "match", Action: "reject"},                                // 5
	}, rules.Options{})
	v.eng.SetRules(set)
	web := "http://localhost:" + webPort + "/hello"
	cases := []struct {
		name  string
		args  []string
		route registry.Route
		rule  int
	}{
		{"http by port", []string{"-x", "http://" + v.proxy(), web}, registry.RouteTunnel, 1},
		{"socks5 by port", []string{"--socks5-hostname", v.proxy(), web}, registry.RouteTunnel, 1},
		{"connect by cidr", []string{"-x", "http://" + v.proxy(), "--cacert", v.caFile, "https://127.0.0.1:" + tlsPort + "/hello"}, registry.RouteDirect, 3},
		{"socks5 by inbound", []string{"--socks5-hostname", v.proxy(), "--cacert", v.caFile, "https://127.0.0.1:" + tlsPort + "/hello"}, registry.RouteDirect, 2},
	}
	for _, c := range cases {
		before := v.ev.known()
		out, err := curltest.Run(t, c.args...)
		if err != nil || out != "hello" {
			t.Errorf("%s: %q, %v", c.name, out, err)
			continue
		}
		v.checkRoute(t, c.name, v.lastConn(t, before), c.route, c.rule)
	}

	// A name by exact domain, in another case (the rule has a trailing
	// dot; a target with one would make the exit ask DNS, off loopback, so
	// that is the rejections' below). The HTTPS origin's certificate does
	// not name localhost, so -k.
	before := v.ev.known()
	if out, err := curltest.Run(t, "-k", "-x", "http://"+v.proxy(), "https://LocalHost:"+tlsPort+"/hello"); err != nil || out != "hello" {
		t.Errorf("domain: %q, %v", out, err)
	} else {
		v.checkRoute(t, "domain", v.lastConn(t, before), registry.RouteTunnel, 4)
	}

	// Rejections: curl is refused, the record says why, nothing is dialled.
	for _, args := range [][]string{
		{"-x", "http://" + v.proxy(), "http://ads.blocked.test/"},
		{"-x", "http://" + v.proxy(), "https://ads.blocked.test/"},
		{"--socks5-hostname", v.proxy(), "http://ADS.Blocked.test./"},
		{"-x", "http://" + v.proxy(), "http://[2001:db8::1]/"}, // the final match
	} {
		before := v.ev.known()
		if _, err := curltest.Run(t, args...); err == nil {
			t.Errorf("%v: not refused", args)
			continue
		}
		info := v.lastConn(t, before)
		want := 0
		if strings.Contains(args[2], "2001") {
			want = 5
		}
		v.checkRoute(t, fmt.Sprint(args), info, registry.RouteReject, want)
		if info.Remote != "" || info.Err == nil {
			t.Errorf("%v: rejected but remote %q, err %v", args, info.Remote, info.Err)
		}
	}
	v.finish(t)
}

func TestRulesRejectAnsweredPerProtocol(t *testing.T) {
	v := newE2E(t, e2eOptions{mode: outbound.ModeRules, rules: compileRules(t, []rules.Rule{
		{Kind: "domain-suffix", Value: "blocked.test", Action: "reject"},
		{Kind: "ip-cidr", Value: "2001:db8::/32", Action: "reject"},
	}, rules.Options{})})

	// HTTP: 403 with the rule in the body.
	c, err := net.DialTimeout("tcp", v.proxy(), e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET http://www.blocked.test/ HTTP/1.1\r\nHost: www.blocked.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "#1 domain-suffix blocked.test → reject") {
		t.Errorf("HTTP: %d %q", resp.StatusCode, body)
	}

	// CONNECT: 403.
	if _, status, err := connectStatus(v.proxy(), "x.blocked.test:443"); err != nil || status != http.StatusForbidden {
		t.Errorf("CONNECT: %d, %v", status, err)
	}
	// SOCKS5: 0x02, "connection not allowed by ruleset".
	if _, code, err := socks5Code(v.proxy(), "[2001:db8::5]:443"); err != nil || code != 0x02 {
		t.Errorf("SOCKS5: %#x, %v", code, err)
	}
	// SOCKS4a: 0x5B.
	if code, err := socks4aCode(v.proxy(), "x.blocked.test", 80); err != nil || code != 0x5B {
		t.Errorf("SOCKS4: %#x, %v", code, err)
	}
	// The PAC the proxy serves is the rules' (a browser asks the proxy for
	// blocked.test, which then refuses it).
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	pacResp, err := (&http.Client{Transport: tr, Timeout: e2eTimeout}).Get("http://" + v.proxy() + "/proxy.pac")
	if err != nil {
		t.Fatal(err)
	}
	pac, err := io.ReadAll(pacResp.Body)
	if cerr := pacResp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || !strings.Contains(string(pac), "from its rules") || !strings.Contains(string(pac), `"blocked.test":1`) {
		t.Errorf("PAC: %v\n%s", err, pac)
	}
	v.finish(t)
	// Logged once each, at INFO.
	if n := len(v.logs.withAttr("rejected", "target")); n != 4 {
		t.Errorf("%d rejections logged, want 4", n)
	}
}

// socks4aCode sends a SOCKS4a CONNECT for host:port and returns the reply
// code.
func socks4aCode(proxyAddr, host string, port uint16) (byte, error) {
	c, err := net.DialTimeout("tcp", proxyAddr, e2eTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		return 0, err
	}
	req := []byte{4, 1}
	req = binary.BigEndian.AppendUint16(req, port)
	req = append(req, 0, 0, 0, 1, 0) // 0.0.0.1: the name follows; empty user id
	req = append(append(req, host...), 0)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var rep [8]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return 0, err
	}
	return rep[1], nil
}

func TestRulesAppWithChildProcess(t *testing.T) {
	v := newE2E(t, e2eOptions{mode: outbound.ModeRules, rules: compileRules(t, []rules.Rule{
		{Kind: "app", Value: "curl", Action: "tunnel"},
		{Kind: "match", Action: "direct"},
	}, rules.Options{AppWait: e2eTimeout})})
	web := v.web.URL + "/hello"
	// curl, a child process: its connection goes through the exit.
	before := v.ev.known()
	if out, err := curltest.Run(t, "-x", "http://"+v.proxy(), web); err != nil || out != "hello" {
		t.Fatalf("curl: %q, %v", out, err)
	}
	info := v.lastConn(t, before)
	v.checkRoute(t, "curl", info, registry.RouteTunnel, 0)
	if info.Process == nil || info.Process.Name != "curl" {
		t.Errorf("curl's record: process %+v", info.Process)
	}
	// This test binary is another program: the final rule.
	before = v.ev.known()
	hc, tr := v.httpClient(t)
	resp, err := hc.Get(web)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	v.checkRoute(t, "go client", v.lastConn(t, before), registry.RouteDirect, 1)
	v.finish(t)
}

// TestRulesHotSwapUnderLoad swaps the rule set while connections stream
// through both routes: none is dropped (every checksum arrives), records
// keep the rule they were opened with, and once the last swap is done new
// connections follow the new set.
func TestRulesHotSwapUnderLoad(t *testing.T) {
	toTunnel := []rules.Rule{{Kind: "ip-cidr", Value: "127.0.0.0/8", Action: "tunnel"}}
	toDirect := []rules.Rule{{Kind: "port", Value: "1-65535", Action: "direct"}}
	v := newE2E(t, e2eOptions{mode: outbound.ModeRules, rules: compileRules(t, toTunnel, rules.Options{})})
	sets := []*rules.Set{compileRules(t, toTunnel, rules.Options{}), compileRules(t, toDirect, rules.Options{})}

	const workers, perWorker = 8, 6
	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	ctx, cancel := context.WithCancel(t.Context())
	swapped := make(chan int, 1)
	go func() { // the swapper: every 100µs until the transfers end (bounded)
		n := 0
		defer func() { swapped <- n }()
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for ; n < int(e2eTimeout/(100*time.Microsecond)); n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			v.eng.SetRules(sets[n%2])
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				p := lcConnect
				if (w+i)%2 == 1 {
					p = lcSOCKS5
				}
				conn, c, err := openConn(v.proxy(), p, v.raw.echoEOF)
				if err != nil {
					errs <- fmt.Errorf("worker %d: open: %w", w, err)
					return
				}
				err = echoCheck(c.conn, conn, payload, c.conn.CloseWrite)
				_ = c.conn.Close() // done with it either way
				if err != nil {
					errs <- fmt.Errorf("worker %d conn %d (%s): %w", w, i, p, err)
				}
			}
		})
	}
	wg.Wait()
	cancel()
	t.Logf("%d swaps during the transfers", <-swapped)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Records carry the rule their route came from; both routes were taken.
	routes := map[registry.Route]int{}
	v.ev.mu.Lock()
	for _, info := range v.ev.opened {
		routes[info.Route]++
		if (info.Route == registry.RouteTunnel) != (info.Rule.Kind == "ip-cidr") || info.Rule.Index != 0 {
			t.Errorf("%s: route %s by %q", info.ID, info.Route, info.Rule)
		}
	}
	v.ev.mu.Unlock()
	t.Logf("routes under load: %v", routes)
	if routes[registry.RouteTunnel] == 0 || routes[registry.RouteDirect] == 0 {
		t.Errorf("the swaps did not show: %v", routes)
	}
	// After the last swap, new connections use the new set.
	for _, set := range sets {
		v.eng.SetRules(set)
		before := v.ev.known()
		conn, c, err := openConn(v.proxy(), lcSOCKS5, v.raw.echoEOF)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoCheck(c.conn, conn, payload[:1000], c.conn.CloseWrite); err != nil {
			t.Fatal(err)
		}
		_ = c.conn.Close()
		want := registry.RouteTunnel
		if set == sets[1] {
			want = registry.RouteDirect
		}
		v.checkRoute(t, "after swap", v.lastConn(t, before), want, 0)
	}
	v.finish(t)
}

func TestRulesIPv6AndDefault(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	go func() { // a one-shot HTTP origin on ::1
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(e2eTimeout)) // best effort: the client's timeout bounds the test
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv6")
	}()
	defer ln.Close()
	v := newE2E(t, e2eOptions{mode: outbound.ModeRules, rules: compileRules(t, []rules.Rule{
		{Kind: "ip-cidr", Value: "::1/128", Action: "direct"},
	}, rules.Options{Default: "reject"})})
	port := ln.Addr().(*net.TCPAddr).Port
	before := v.ev.known()
	if out, err := curltest.Run(t, "--socks5-hostname", v.proxy(), "http://[::1]:"+strconv.Itoa(port)+"/"); err != nil || out != "v6" {
		t.Errorf("v6: %q %v", out, err)
	} else {
		v.checkRoute(t, "v6", v.lastConn(t, before), registry.RouteDirect, 0)
	}
	before = v.ev.known()
	if _, status, err := connectStatus(v.proxy(), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 9).String()); err != nil || status != http.StatusForbidden {
		t.Errorf("default reject: %d %v", status, err)
	}
	info := v.lastConn(t, before)
	v.checkRoute(t, "default", info, registry.RouteReject, -1)
	if info.Rule.String() != "default → reject" {
		t.Errorf("default's rule text %q", info.Rule)
	}
	v.finish(t)
}
