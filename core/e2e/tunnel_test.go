package e2e

// Tunnel mode end to end: real clients (curl, net/http, x/net/proxy and the
// hand-written ones) → the engine → one WebSocket → an exit server → origins
// on loopback. Everything clients do in direct mode must work the same
// through the tunnel; refusals must reach the client in its own protocol;
// a dying exit, Stop and Start must end each connection exactly once with
// the right reason. The surroundings are in tunnel_helpers_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/core/inbound"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/relay"
	"porthole/core/tunnel"
	"porthole/internal/chantest"
	"porthole/internal/curltest"
	"porthole/internal/freeport"
	"porthole/internal/randbytes"
)

// TestTunnelCurl: curl through the HTTP proxy (plain forwarding, -p and
// https via CONNECT) and through SOCKS5 (IP and host name), each recorded
// as one connection through the tunnel whose stream id the exit logged.
func TestTunnelCurl(t *testing.T) {
	curltest.Need(t)
	v := newE2E(t, e2eOptions{})
	proxyHTTP := "http://" + v.proxy()
	web := v.web.Listener.Addr().String()
	_, port, err := net.SplitHostPort(web)
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := v.tls.Listener.Addr().String()
	cases := []struct {
		name   string
		args   []string
		proto  registry.Proto
		target string
	}{
		{"http", []string{"-x", proxyHTTP, v.web.URL + "/hello"}, registry.ProtoHTTP, web},
		{"http-proxytunnel", []string{"-p", "-x", proxyHTTP, v.web.URL + "/hello"}, registry.ProtoConnect, web},
		{"https-cacert", []string{"-x", proxyHTTP, "--cacert", v.caFile, v.tls.URL + "/hello"}, registry.ProtoConnect, tlsAddr},
		{"https-insecure", []string{"-x", proxyHTTP, "-k", v.tls.URL + "/hello"}, registry.ProtoConnect, tlsAddr},
		{"socks5h", []string{"-x", "socks5h://" + v.proxy(), "http://localhost:" + port + "/hello"}, registry.ProtoSOCKS5, "localhost:" + port},
		{"socks5", []string{"-x", "socks5://" + v.proxy(), v.web.URL + "/hello"}, registry.ProtoSOCKS5, web},
		{"socks5h-https", []string{"-x", "socks5h://" + v.proxy(), "--cacert", v.caFile, v.tls.URL + "/hello"}, registry.ProtoSOCKS5, tlsAddr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := v.ev.known()
			out, err := curltest.Run(t, tc.args...)
			if err != nil || out != "hello" {
				t.Fatalf("%q, %v; want \"hello\"", out, err)
			}
			// curl has exited: its connection ends.
			infos, err := v.ev.newClosed(before, 1)
			if err != nil {
				t.Fatal(err)
			}
			rec := infos[0]
			if rec.Proto != tc.proto || rec.Target != tc.target || rec.Route != registry.RouteTunnel {
				t.Errorf("record: %s %s %s, want %s %s %s", rec.Proto, rec.Target, rec.Route, tc.proto, tc.target, registry.RouteTunnel)
			}
			// curl may reset a TLS connection it is done with: the peer
			// going away is an expected ending, a lost tunnel is not.
			if !relay.Expected(rec.Err) || errors.Is(rec.Err, tunnel.ErrTunnelLost) || rec.Up == 0 || rec.Down == 0 {
				t.Errorf("record: up %d, down %d, reason %v; want bytes both ways and an expected end", rec.Up, rec.Down, rec.Err)
			}
			if !v.exit().streamIDs()[rec.ID.String()] {
				t.Errorf("the exit logged no stream %s", rec.ID)
			}
		})
	}
	v.finish(t)
}

// TestTunnelBigTransfers moves 64 MiB down and 64 MiB up through single
// streams (CONNECT and SOCKS5), and 16 MiB each way through plain HTTP
// forwarding, each checked by sha256 and by the registry's exact counts.
func TestTunnelBigTransfers(t *testing.T) {
	const big = 64 << 20
	v := newE2E(t, e2eOptions{})

	t.Run("download-connect", func(t *testing.T) {
		c, lc, err := openConn(v.proxy(), lcConnect, v.origin.send)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], big)
		if _, err := c.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil || n != big {
			t.Fatalf("received %d of %d bytes: %v", n, big, err)
		}
		if [32]byte(h.Sum(nil)) != patternSum(0, big) {
			t.Fatalf("checksum of the %d bytes received differs", n)
		}
		info := v.closeAndSettle(t, c, lc.laddr, v.origin.send)
		if info.Err != nil || info.Up != 4 || info.Down != big {
			t.Errorf("record: up %d, down %d, reason %v; want 4, %d, clean", info.Up, info.Down, info.Err, big)
		}
	})

	t.Run("upload-socks5", func(t *testing.T) {
		c, err := dialSOCKS5(t.Context(), v.proxy(), v.raw.sink)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		laddr := c.raw.LocalAddr().String()
		if n, err := writePattern(c, 0, big); err != nil {
			t.Fatalf("wrote %d of %d bytes: %v", n, big, err)
		}
		if err := c.raw.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		sum, n, err := readSum(c)
		if err != nil {
			t.Fatal(err)
		}
		if n != big || sum != patternSum(0, big) {
			t.Fatalf("the sink received %d bytes (want %d), checksum match %v", n, big, sum == patternSum(0, big))
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after the answer: %v, want EOF", err)
		}
		info := v.closeAndSettle(t, c, laddr, v.raw.sink)
		if info.Err != nil || info.Up != big || info.Down != 40 {
			t.Errorf("record: up %d, down %d, reason %v; want %d, 40, clean", info.Up, info.Down, info.Err, big)
		}
	})

	t.Run("http-forwarding", func(t *testing.T) {
		const size = 16 << 20
		client, tr := v.httpClient(t)
		before := v.ev.known()
		resp, err := client.Get(v.web.URL + "/bytes?n=" + strconv.Itoa(size))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != size || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s, %d bytes, %v", resp.Status, n, err)
		}
		if [32]byte(h.Sum(nil)) != patternSum(0, size) {
			t.Fatal("GET: checksum differs")
		}
		body := randbytes.New(1, size)
		resp, err = client.Post(v.web.URL+"/sum", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %s, %v", resp.Status, err)
		}
		if want := sumLine(sha256.Sum256(body), size); string(got) != want {
			t.Fatalf("POST: the origin answered %q, want %q", got, want)
		}
		tr.CloseIdleConnections()
		// Both requests went over one kept-alive upstream.
		infos, err := v.ev.newClosed(before, 1)
		if err != nil {
			t.Fatal(err)
		}
		if info := infos[0]; info.Err != nil || info.Proto != registry.ProtoHTTP || info.Up < size || info.Down < size {
			t.Errorf("record: %s up %d, down %d, reason %v; want more than %d each way, clean", info.Proto, info.Up, info.Down, info.Err, size)
		}
	})
	v.finish(t)
}

// TestTunnelConcurrent runs 100 connections at once, of four kinds
// (CONNECT echo, SOCKS5 echo, HTTP download, HTTP upload), with random
// sizes, each checked by checksum; every record went through the tunnel,
// closed once, and its id is the stream id the exit logged.
func TestTunnelConcurrent(t *testing.T) {
	const conns = 100
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	v := newE2E(t, e2eOptions{})
	client, tr := v.httpClient(t)
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		moved    atomic.Int64
	)
	fail := func(i int, err error) {
		failures.Add(1)
		t.Errorf("connection %d: %v", i, err)
	}
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			size := r.IntN(512 << 10)
			payload := randbytes.New(seed+uint64(i), size)
			moved.Add(int64(size))
			switch i % 4 {
			case 0:
				c, _, err := openConn(v.proxy(), lcConnect, v.origin.echo)
				if err != nil {
					fail(i, err)
					return
				}
				defer c.Close()
				if err := echoCheck(c, c, payload, nil); err != nil {
					fail(i, fmt.Errorf("CONNECT %w", err))
				}
			case 1:
				c, err := dialSOCKS5(t.Context(), v.proxy(), v.origin.echo)
				if err != nil {
					fail(i, err)
					return
				}
				defer c.Close()
				if err := echoCheck(c, c, payload, nil); err != nil {
					fail(i, fmt.Errorf("SOCKS5 %w", err))
				}
			case 2:
				resp, err := client.Get(v.web.URL + "/bytes?n=" + strconv.Itoa(size))
				if err != nil {
					fail(i, err)
					return
				}
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				if cerr := resp.Body.Close(); err == nil {
					err = cerr
				}
				if err != nil || n != int64(size) || [32]byte(h.Sum(nil)) != patternSum(0, int64(size)) {
					fail(i, fmt.Errorf("GET %d bytes: %s, got %d, %v, or a wrong checksum", size, resp.Status, n, err))
				}
			case 3:
				resp, err := client.Post(v.web.URL+"/sum", "application/octet-stream", bytes.NewReader(payload))
				if err != nil {
					fail(i, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				if cerr := resp.Body.Close(); err == nil {
					err = cerr
				}
				if want := sumLine(sha256.Sum256(payload), int64(size)); err != nil || string(got) != want {
					fail(i, fmt.Errorf("POST %d bytes: %q, %v; want %q", size, got, err, want))
				}
			}
		}()
	}
	if !within(3*e2eTimeout, wg.Wait) {
		t.Fatalf("clients did not finish\n%s", goroutineDump())
	}
	tr.CloseIdleConnections()
	if !v.ev.drained(e2eTimeout) {
		o, c := v.ev.counts()
		t.Fatalf("%d Opened, %d Closed after the clients finished", o, c)
	}
	t.Logf("%d connections, %d failed, %d MiB of payloads", conns, failures.Load(), moved.Load()>>20)

	// The exit dialled exactly the registry's connections, by their ids.
	exitIDs := v.exit().streamIDs()
	v.ev.mu.Lock()
	regIDs := map[string]bool{}
	for id, info := range v.ev.closed {
		regIDs[id.String()] = true
		if info.Err != nil {
			t.Errorf("connection %s (%s → %s) closed with %v", id, info.Proto, info.Target, info.Err)
		}
	}
	v.ev.mu.Unlock()
	if len(regIDs) < conns/2 { // CONNECT and SOCKS5 are one each; HTTP may share
		t.Errorf("only %d connections in the registry", len(regIDs))
	}
	for id := range regIDs {
		if !exitIDs[id] {
			t.Errorf("registry connection %s: the exit logged no stream with its id", id)
		}
	}
	for id := range exitIDs {
		if !regIDs[id] {
			t.Errorf("exit stream %s: no registry connection with its id", id)
		}
	}
	v.finish(t)
}

// TestTunnelHalfClose: the client half-closes a tunnel to an origin that
// answers only after EOF, and still receives the whole answer, over CONNECT
// and SOCKS5.
func TestTunnelHalfClose(t *testing.T) {
	v := newE2E(t, e2eOptions{})
	payload := randbytes.New(3, 3<<20+11)
	check := func(t *testing.T, c net.Conn, laddr string, closeWrite func() error) {
		t.Helper()
		if err := echoCheck(c, c, payload, closeWrite); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after the answer: %v, want EOF", err)
		}
		info := v.closeAndSettle(t, c, laddr, v.raw.echoEOF)
		if n := int64(len(payload)); info.Err != nil || info.Up != n || info.Down != n {
			t.Errorf("record: up %d, down %d, reason %v; want %d each way, clean", info.Up, info.Down, info.Err, n)
		}
		// The exit said in OPEN_OK where it connected: the origin's address.
		if info.Remote != v.raw.echoEOF {
			t.Errorf("record's remote %q, want the address the exit connected to, %s", info.Remote, v.raw.echoEOF)
		}
	}
	for _, p := range []lcProto{lcConnect, lcSOCKS5} {
		t.Run(p.String(), func(t *testing.T) {
			c, lc, err := openConn(v.proxy(), p, v.raw.echoEOF)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			check(t, c, lc.laddr, c.CloseWrite)
		})
	}
	t.Run("x/net/proxy", func(t *testing.T) {
		c, err := dialSOCKS5(t.Context(), v.proxy(), v.raw.echoEOF)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(t, c, c.raw.LocalAddr().String(), c.raw.CloseWrite)
	})
	v.finish(t)
}

// TestTunnelRefusals: a target the exit will not or cannot reach is
// answered in the client's protocol (HTTP 403/502, SOCKS5 0x02/0x05),
// logged once at INFO by the client's proxy, and recorded with the exit's
// reason.
func TestTunnelRefusals(t *testing.T) {
	type want struct {
		http  int
		socks byte
		code  tunnel.Code
	}
	run := func(t *testing.T, v *e2eEnv, target string, w want) {
		check := func(t *testing.T, what string, infos []registry.Info, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			info := infos[0]
			var oe *tunnel.OpenError
			if !errors.As(info.Err, &oe) || oe.Code != w.code {
				t.Errorf("%s: record closed with %v, want an OpenError %s", what, info.Err, w.code)
			}
			if info.Route != registry.RouteTunnel || info.Target != target {
				t.Errorf("%s: record %s → %s, want %s → %s", what, info.Route, info.Target, registry.RouteTunnel, target)
			}
			if n := v.logs.countAt(slog.LevelInfo, "conn", info.ID.String()); n != 1 {
				t.Errorf("%s: %d INFO log records about connection %s, want 1", what, n, info.ID)
			}
			if n := v.logs.countAt(slog.LevelError, "conn", info.ID.String()); n != 0 {
				t.Errorf("%s: %d ERROR log records about connection %s", what, n, info.ID)
			}
		}
		// CONNECT's status and SOCKS5's reply code, each asked on a
		// connection of its own.
		for _, a := range []struct {
			proto string
			ask   func(proxy, target string) (answer int, err error)
			want  int
		}{
			{"CONNECT", func(p, tg string) (int, error) { _, status, err := connectStatus(p, tg); return status, err }, w.http},
			{"SOCKS5", func(p, tg string) (int, error) { _, code, err := socks5Code(p, tg); return int(code), err }, int(w.socks)},
		} {
			t.Run(a.proto, func(t *testing.T) {
				before := v.ev.known()
				if answer, err := a.ask(v.proxy(), target); err != nil || answer != a.want {
					t.Errorf("%s %s: answer %#x, %v; want %#x", a.proto, target, answer, err, a.want)
				}
				infos, err := v.ev.newClosed(before, 1)
				check(t, a.proto, infos, err)
			})
		}
		t.Run("HTTP", func(t *testing.T) {
			client, tr := v.httpClient(t)
			before := v.ev.known()
			resp, err := client.Get("http://" + target + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if cerr := resp.Body.Close(); err == nil {
				err = cerr
			}
			if err != nil || resp.StatusCode != w.http {
				t.Errorf("GET http://%s: %s, %v; want %d", target, resp.Status, err, w.http)
			}
			t.Logf("%s: %s", resp.Status, body)
			tr.CloseIdleConnections()
			infos, err := v.ev.newClosed(before, 1)
			check(t, "HTTP", infos, err)
		})
	}
	t.Run("private-denied", func(t *testing.T) {
		v := newE2E(t, e2eOptions{denyPrivate: true})
		run(t, v, v.origin.echo, want{http.StatusForbidden, 0x02, tunnel.CodeDenied})
		// The exit never reached the origin.
		v.finish(t)
	})
	t.Run("port-closed", func(t *testing.T) {
		v := newE2E(t, e2eOptions{})
		run(t, v, v.raw.closedAt, want{http.StatusBadGateway, 0x05, tunnel.CodeRefused})
		v.finish(t)
	})
}

// flow is a connection moving bytes through the tunnel until it is ended
// from elsewhere: an echo (the client writes the pattern and checks it
// back) or a download from the send origin.
type flow struct {
	c      *lcClient
	target string
	id     xid.ID
	ended  chan error // the client's read error once the flow ended
}

// startFlows opens n flows, alternately CONNECT and SOCKS5, two echoes to
// one download, then starts their traffic (all opened first: a dial does
// not wait behind bulk data), and returns once each has moved 64 KiB.
func startFlows(t *testing.T, v *e2eEnv, n int) []*flow {
	t.Helper()
	flows := make([]*flow, 0, n)
	for i := range n {
		p := lcProto(i % 2)
		target := v.origin.echo
		if i%3 == 2 {
			target = v.origin.send
		}
		c, err := openTunnel(v.proxy(), p, target)
		if c != nil {
			t.Cleanup(func() { _ = c.conn.Close() })
		}
		if err != nil {
			t.Fatalf("flow %d: %s to %s: %v", i, p, target, err)
		}
		id, err := v.ev.claim(c.laddr, target)
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, &flow{c: c, target: target, id: id, ended: make(chan error, 1)})
	}
	var running sync.WaitGroup
	for i, f := range flows {
		if f.target == v.origin.send {
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], 1<<31)
			if _, err := f.c.conn.Write(hdr[:]); err != nil {
				t.Fatalf("flow %d: %v", i, err)
			}
		} else {
			wres := startPatternWriter(f.c, 1<<40)
			t.Cleanup(func() {
				_ = f.c.conn.Close()
				<-wres // ends with the connection
			})
		}
		running.Add(1)
		go func() {
			once := sync.OnceFunc(running.Done)
			defer once()
			buf := make([]byte, 32<<10)
			var got int64
			for range 1 << 20 { // bounded; ends with the connection
				k, err := f.c.br.Read(buf)
				if !isPattern(buf[:k], got) {
					f.ended <- fmt.Errorf("wrong bytes at %d", got)
					return
				}
				if got += int64(k); got >= 64<<10 {
					once()
				}
				if err != nil {
					f.ended <- err
					return
				}
			}
			f.ended <- errors.New("flow did not end")
		}()
	}
	if !within(e2eTimeout, running.Wait) {
		t.Fatalf("flows did not start moving bytes")
	}
	return flows
}

// endFlows waits for every flow's client to see its connection end (not
// by its own deadline) and returns the flows' final records.
func endFlows(t *testing.T, v *e2eEnv, flows []*flow) []registry.Info {
	t.Helper()
	infos := make([]registry.Info, 0, len(flows))
	for i, f := range flows {
		if err := chantest.Within(t, e2eTimeout, fmt.Sprintf("the end of flow %d", i), f.ended); timedOut(err) || err == nil {
			t.Errorf("flow %d (%s → %s): client saw %v, want the connection ended", i, f.c.proto, f.target, err)
		}
		info, err := v.ev.closedInfo(f.id)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	return infos
}

// TestTunnelExitDies kills the exit while connections stream: each ends
// once with a reason wrapping ErrTunnelLost ("exit lost: NAME"), the
// tunnel reconnects, a connection during the outage gets 502 at once (the
// exit is down: no wait for the dial timeout), and after the exit is back
// new connections go through.
func TestTunnelExitDies(t *testing.T) {
	v := newE2E(t, e2eOptions{dialTimeout: time.Second})
	flows := startFlows(t, v, 12)

	old := v.exit()
	returnsWithin(t, "exit kill", old.kill)
	for i, info := range endFlows(t, v, flows) {
		if !errors.Is(info.Err, tunnel.ErrTunnelLost) || !errors.Is(info.Err, outbound.ErrExitLost) {
			t.Errorf("flow %d (%s → %s) closed with %v, want %v and %v", i, info.Proto, info.Target, info.Err, tunnel.ErrTunnelLost, outbound.ErrExitLost)
		}
	}
	st := v.waitTunnel(t, "reconnecting", func(st tunnel.Status) bool { return st.State == tunnel.StateWaiting })
	if st.State.String() != "reconnecting" || st.Err == nil {
		t.Errorf("status while the exit is down: %s, err %v", st.State, st.Err)
	}

	// During the outage: the dial fails fast naming the exit, the client
	// gets 502 and the record closes once, tunnel down.
	before := v.ev.known()
	began := time.Now()
	laddr, status, err := connectStatus(v.proxy(), v.origin.echo)
	if err != nil || status != http.StatusBadGateway {
		t.Errorf("CONNECT during the outage: %d, %v; want 502", status, err)
	}
	t.Logf("CONNECT during the outage answered after %v", time.Since(began).Round(time.Millisecond))
	infos, err := v.ev.newClosed(before, 1)
	if err != nil {
		t.Fatal(err)
	}
	if info := infos[0]; info.Client != laddr || !errors.Is(info.Err, outbound.ErrExitDown) || outbound.Classify(info.Err) != outbound.FailTunnelDown {
		t.Errorf("outage record: %s closed with %v, want %s with %v", info.Client, info.Err, laddr, outbound.ErrExitDown)
	}
	// The tunnel client reports the outage (WARN, once); the connections
	// it fails are no more than INFO each, never WARN or ERROR.
	id := infos[0].ID.String()
	if n := v.logs.countAt(slog.LevelInfo, "conn", id) + v.logs.countAt(slog.LevelDebug, "conn", id); n == 0 {
		t.Errorf("the connection refused during the outage was not logged")
	}
	if n := v.logs.countAt(slog.LevelWarn, "conn", id) + v.logs.countAt(slog.LevelError, "conn", id); n != 0 {
		t.Errorf("%d WARN or ERROR records about the connection refused during the outage", n)
	}

	// The exit comes back on the same address; the client reconnects.
	v.exits = append(v.exits, startExit(t, old.addr, true))
	st = v.waitTunnel(t, "reconnected", func(st tunnel.Status) bool { return st.State == tunnel.StateConnected })
	if st.Sessions != 2 {
		t.Errorf("after the exit came back: %d sessions, want 2", st.Sessions)
	}
	for _, p := range []lcProto{lcConnect, lcSOCKS5} {
		c, lc, err := openConn(v.proxy(), p, v.origin.echo)
		if err != nil {
			t.Fatalf("after the exit came back: %v", err)
		}
		if err := echoCheck(c, c, patternBytes(200<<10), c.CloseWrite); err != nil {
			t.Errorf("after the exit came back, %s: %v", p, err)
		}
		info := v.closeAndSettle(t, c, lc.laddr, v.origin.echo)
		if info.Err != nil || !v.exit().streamIDs()[info.ID.String()] {
			t.Errorf("after the exit came back, %s: closed with %v; the new exit logged it: %v", p, info.Err, v.exit().streamIDs()[info.ID.String()])
		}
	}
	v.finish(t)
}

// patternBytes is n bytes of the pattern stream.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = lcPattern[i%len(lcPattern)]
	}
	return b
}

// TestTunnelStopStart: Stop ends the live connections as "proxy stopped",
// not as a lost tunnel, and the exit sees the session end; Start connects
// again.
func TestTunnelStopStart(t *testing.T) {
	v := newE2E(t, e2eOptions{})
	flows := startFlows(t, v, 4)
	x := v.exit()
	if n := x.srv.Sessions(); n != 1 {
		t.Fatalf("exit has %d sessions, want 1", n)
	}
	returnsWithin(t, "Stop", v.eng.Stop)
	for i, info := range endFlows(t, v, flows) {
		if !errors.Is(info.Err, inbound.ErrStopped) || errors.Is(info.Err, tunnel.ErrTunnelLost) {
			t.Errorf("flow %d (%s → %s) closed with %v, want %v", i, info.Proto, info.Target, info.Err, inbound.ErrStopped)
		}
	}
	if st, _ := v.eng.TunnelStatus(); st.State != tunnel.StateClosed {
		t.Errorf("tunnel while stopped: %s, want %s", st.State, tunnel.StateClosed)
	}
	// The session ends on the exit's side when its handler returns; no
	// event tells.
	pollUntil(t, "the exit's session ended", func() bool {
		return x.srv.Sessions() == 0 && len(x.logs.withAttr("session ended", "session")) == 1
	})

	if err := v.eng.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	v.waitTunnel(t, "connected again", func(st tunnel.Status) bool { return st.State == tunnel.StateConnected })
	c, lc, err := openConn(v.proxy(), lcSOCKS5, v.origin.echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(c, c, patternBytes(100<<10), c.CloseWrite); err != nil {
		t.Error(err)
	}
	info := v.closeAndSettle(t, c, lc.laddr, v.origin.echo)
	if info.Err != nil {
		t.Errorf("after Start: closed with %v", info.Err)
	}
	if n := x.srv.Sessions(); n != 1 {
		t.Errorf("after Start the exit has %d sessions, want 1", n)
	}
	v.finish(t)
}

// ---- nginx in front of the exit ----

// nginxBinary finds nginx, on PATH or where Debian puts it.
func nginxBinary() (string, bool) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// startNginx runs nginx as a child process (no daemon), listening on a free
// loopback port and proxying WebSocket upgrades on e2ePath to the exit at
// exitAddr, as the README's deployment behind a reverse proxy does. It
// returns the exit URL through nginx.
func startNginx(t *testing.T, bin, exitAddr string) string {
	t.Helper()
	dir := t.TempDir()
	// Another process could take the free port before nginx does; then
	// nginx fails to start and the test says why.
	addr := freeport.Loopback(t)
	var conf strings.Builder
	if os.Geteuid() == 0 {
		// Workers would switch to nobody, who cannot enter the test's
		// directory.
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "user %s %s;\n", u.Username, g.Name)
	}
	// Temp paths of the modules this nginx has (Debian's light build has
	// them all; a build without one refuses its directive).
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	version, err := exec.CommandContext(ctx, bin, "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -V: %v: %s", bin, err, version)
	}
	var temps strings.Builder
	for _, m := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if m != "client_body" && m != "proxy" && strings.Contains(string(version), "--without-http_"+m+"_module") {
			continue
		}
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", m, filepath.Join(dir, m))
	}
	fmt.Fprintf(&conf, `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
%[2]s
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen %[3]s;
        location %[4]s {
            proxy_pass http://%[5]s;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
`, dir, temps.String(), addr, e2ePath, exitAddr)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "error.log")
	cmd := exec.Command(bin, "-e", errorLog, "-p", dir, "-c", confFile, "-g", "daemon off;")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logs := func() string {
		b, err := os.ReadFile(errorLog)
		if err != nil {
			return fmt.Sprintf("(no error log: %v)", err)
		}
		return string(b)
	}
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers and waits for them (a
		// killed master would leave them running). Kill only if it hangs.
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Logf("nginx: SIGTERM: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Logf("nginx exited: %v", err)
			}
		case <-time.After(e2eTimeout):
			t.Errorf("nginx did not stop on SIGTERM; killing it")
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("killing nginx: %v", err)
			}
			<-exited
		}
		if t.Failed() {
			t.Logf("nginx output: %s\nnginx error log:\n%s", out.String(), logs())
		}
	})
	// Wait until it accepts (or exits): nothing tells when nginx listens.
	var early error
	pollUntil(t, "nginx accepting on "+addr, func() bool {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			early = fmt.Errorf("nginx exited: %v", err)
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		early = c.Close()
		return true
	})
	if early != nil {
		t.Fatalf("%v\n%s\n%s", early, out.String(), logs())
	}
	return "ws://" + addr + e2ePath
}

// TestTunnelThroughNginx runs the tunnel through nginx as a reverse proxy
// (client → nginx → exit) and traffic of every kind through it.
func TestTunnelThroughNginx(t *testing.T) {
	bin, ok := nginxBinary()
	if !ok {
		t.Skip("nginx is not installed: run build/deps.sh (installs nginx-light) or apt-get install nginx-light")
	}
	v := newE2E(t, e2eOptions{front: func(t *testing.T, exitAddr string) string { return startNginx(t, bin, exitAddr) }})
	// The session came through nginx: it added X-Forwarded-For. The exit
	// logs the session after its 101 went out, so the client may be
	// connected a moment before the record exists.
	pollUntil(t, "the exit's session record with forwarded_for 127.0.0.1 (nginx in between)", func() bool {
		return v.exit().logs.withAttr("session started", "forwarded_for")["127.0.0.1"]
	})

	// A big echo each way, by CONNECT and SOCKS5.
	payload := patternBytes(8 << 20)
	for _, p := range []lcProto{lcConnect, lcSOCKS5} {
		c, lc, err := openConn(v.proxy(), p, v.origin.echo)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoCheck(c, c, payload, c.CloseWrite); err != nil {
			t.Errorf("%s through nginx: %v", p, err)
		}
		info := v.closeAndSettle(t, c, lc.laddr, v.origin.echo)
		if n := int64(len(payload)); info.Err != nil || info.Up != n || info.Down != n {
			t.Errorf("%s through nginx: up %d, down %d, reason %v", p, info.Up, info.Down, info.Err)
		}
	}
	// curl, the HTTP proxy and SOCKS5.
	if _, err := exec.LookPath("curl"); err == nil {
		for _, args := range [][]string{
			{"-x", "http://" + v.proxy(), v.web.URL + "/hello"},
			{"-x", "http://" + v.proxy(), "--cacert", v.caFile, v.tls.URL + "/hello"},
			{"-x", "socks5h://" + v.proxy(), v.web.URL + "/hello"},
		} {
			if out, err := curltest.Run(t, args...); err != nil || out != "hello" {
				t.Errorf("curl %v through nginx: %q, %v", args, out, err)
			}
		}
	}
	// 20 concurrent streams.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialSOCKS5(t.Context(), v.proxy(), v.origin.echo)
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			defer c.Close()
			if err := echoCheck(c, c, patternBytes(64<<10+i), nil); err != nil {
				t.Errorf("stream %d: %v", i, err)
			}
		}()
	}
	if !within(e2eTimeout, wg.Wait) {
		t.Fatalf("streams through nginx did not finish")
	}
	if !v.ev.drained(e2eTimeout) {
		t.Fatalf("connections through nginx did not all close")
	}
	v.finish(t)
}
