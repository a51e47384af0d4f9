package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"

	"porthole/app/api"
	"porthole/app/config"
	"porthole/app/logring"
	"porthole/core/exit"
	"porthole/core/registry"
	"porthole/internal/connecttest"
	"porthole/internal/exittest"
	"porthole/internal/freeport"
	echoorigin "porthole/internal/origin"
)

const apiSecret = "test-secret-123"

// apiEnv is a running Controller with its control API, an echo origin and
// an exit server, all on loopback.
type apiEnv struct {
	t        *testing.T
	ctl      *Controller
	path     string
	api      string // host:port of the API
	echo     string // host:port of the echo origin
	exitName string
	logs     *logring.Ring
	log      *slog.Logger
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	echo := echoorigin.Echo(t)
	// Stopped after the controller's Close (cleanups run last in first out).
	xaddr := exittest.Serve(t, exit.Config{Token: "s3cret", AllowPrivate: true, Logger: slog.New(slog.DiscardHandler)})

	cfg := config.Default()
	cfg.Bypass = []string{}
	cfg.Exit = "ws://" + xaddr + "/porthole"
	cfg.Token = "s3cret"
	e := startAPIEnv(t, cfg)
	e.echo, e.exitName = echo, "127.0.0.1"
	return e
}

// startAPIEnv saves cfg (on a fixed free port, with the API on) and runs
// a Controller and its control API on it.
func startAPIEnv(t *testing.T, cfg config.Config) *apiEnv {
	t.Helper()
	cfg.Listen = freeport.Loopback(t) // fixed: a mode change restarts the proxy on it
	cfg.API = config.API{Listen: "127.0.0.1:0", Secret: apiSecret}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelDebug)
	ring := logring.New(logring.Options{Level: lv})
	log := slog.New(logring.Tee(ring, slog.DiscardHandler))
	ctl := NewController(cfg, nil, log)
	t.Cleanup(func() {
		if err := ctl.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ctl.StartAPI(APIOptions{ConfigPath: path, Logs: ring, LogLevel: lv, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	st := ctl.APIStatus()
	if st.Addr == "" || st.Err != nil {
		t.Fatalf("API status %+v", st)
	}
	return &apiEnv{t: t, ctl: ctl, path: path, api: st.Addr, logs: ring, log: log}
}

func (e *apiEnv) proxy() string { return e.ctl.Status().Addr }

// do sends one request with the secret (unless auth is false) and returns
// the status and the body.
func (e *apiEnv) do(method, path string, body string, auth bool) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://"+e.api+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+apiSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON GETs path and decodes the object it answers.
func (e *apiEnv) getJSON(path string) map[string]any {
	e.t.Helper()
	status, b := e.do("GET", path, "", true)
	if status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
	return m
}

// ws opens a WebSocket with ?token=.
func (e *apiEnv) ws(path string) *websocket.Conn {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+e.api+path+sep+"token="+apiSecret, nil)
	if err != nil {
		e.t.Fatalf("WebSocket %s: %v (%v)", path, err, resp)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func readWS(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return m
}

// tunnelTo opens a CONNECT tunnel through the proxy to target and checks
// one echo through it.
func tunnelTo(t *testing.T, proxy, target string) net.Conn {
	t.Helper()
	c, br, resp, err := connecttest.Dial(proxy, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func localPort(c net.Conn) string {
	_, p, _ := net.SplitHostPort(c.LocalAddr().String())
	return p
}

// typed checks that m[key] is present with JSON type T and returns it.
func typed[T any](t *testing.T, m map[string]any, key string) T {
	t.Helper()
	var zero T
	v, ok := m[key]
	if !ok {
		t.Errorf("field %q is missing in %v", key, m)
		return zero
	}
	tv, ok := v.(T)
	if !ok {
		t.Errorf("field %q is %T (%v), want %T", key, v, v, zero)
	}
	return tv
}

// metadataStrings are the metadata fields mihomo always sends as strings;
// dashboards call string methods on them.
var metadataStrings = []string{"network", "type", "sourceIP", "destinationIP", "sourceIPASN", "destinationIPASN",
	"sourcePort", "destinationPort", "inboundIP", "inboundPort", "inboundName", "inboundUser", "host", "dnsMode",
	"process", "processPath", "specialProxy", "specialRules", "remoteDestination", "sniffHost"}

// checkConn checks one connection of /connections field by field.
func checkConn(t *testing.T, c map[string]any) {
	t.Helper()
	if id := typed[string](t, c, "id"); id == "" {
		t.Error("empty id")
	}
	md := typed[map[string]any](t, c, "metadata")
	for _, k := range metadataStrings {
		typed[string](t, md, k)
	}
	for _, k := range []string{"uid", "dscp"} {
		typed[float64](t, md, k)
	}
	for _, k := range []string{"sourceGeoIP", "destinationGeoIP"} {
		typed[[]any](t, md, k)
	}
	for _, k := range []string{"sourcePort", "destinationPort", "inboundPort"} {
		if _, err := strconv.Atoi(typed[string](t, md, k)); err != nil {
			t.Errorf("metadata.%s = %v: not a port as a string", k, md[k])
		}
	}
	typed[float64](t, c, "upload")
	typed[float64](t, c, "download")
	if _, err := time.Parse(time.RFC3339Nano, typed[string](t, c, "start")); err != nil {
		t.Errorf("start: %v", err)
	}
	chains := typed[[]any](t, c, "chains")
	if len(chains) == 0 {
		t.Error("chains is empty")
	}
	for _, ch := range chains {
		if s, ok := ch.(string); !ok || s == "" {
			t.Errorf("chains holds %v", ch)
		}
	}
	typed[string](t, c, "rule")
	typed[string](t, c, "rulePayload")
}

// findConn is the connection whose client port is port, or nil.
func findConn(t *testing.T, snap map[string]any, port string) map[string]any {
	t.Helper()
	for _, c := range typed[[]any](t, snap, "connections") {
		m := c.(map[string]any)
		if m["metadata"].(map[string]any)["sourcePort"] == port {
			return m
		}
	}
	return nil
}

func checkSnapshot(t *testing.T, snap map[string]any) {
	t.Helper()
	for _, k := range []string{"downloadTotal", "uploadTotal", "memory"} {
		typed[float64](t, snap, k)
	}
	for _, c := range typed[[]any](t, snap, "connections") {
		checkConn(t, c.(map[string]any))
	}
}

func TestAPIConnections(t *testing.T) {
	e := newAPIEnv(t)
	// No connection yet: an empty array, never null.
	status, body := e.do("GET", "/connections", "", true)
	if status != 200 || !bytes.Contains(body, []byte(`"connections":[]`)) {
		t.Fatalf("empty /connections: %d %s", status, body)
	}
	c := tunnelTo(t, e.proxy(), e.echo)
	// The echo is back, but the relay counts each direction once its write
	// returned, and the client can read the echo before the download's
	// write has returned: on a loaded machine the snapshot can come between
	// (up 0 down 4 and up 4 down 0 were both seen). Counts are live, not
	// instant: look again (bounded) until both are in.
	var snap, conn map[string]any
	for range 50 {
		snap = e.getJSON("/connections")
		if conn = findConn(t, snap, localPort(c)); conn != nil &&
			conn["upload"].(float64) == 4 && conn["download"].(float64) == 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkSnapshot(t, snap)
	if conn == nil {
		t.Fatalf("the tunnel is not in %v", snap)
	}
	md := conn["metadata"].(map[string]any)
	_, echoPort, _ := net.SplitHostPort(e.echo)
	if md["type"] != "HTTPS" || md["network"] != "tcp" || md["destinationIP"] != "127.0.0.1" ||
		md["destinationPort"] != echoPort || md["sourceIP"] != "127.0.0.1" || md["host"] != "" {
		t.Errorf("metadata %v", md)
	}
	if ch := conn["chains"].([]any); len(ch) != 1 || ch[0] != "DIRECT" {
		t.Errorf("chains %v, want [DIRECT] in direct mode", ch)
	}
	if conn["upload"].(float64) != 4 || conn["download"].(float64) != 4 {
		t.Errorf("counts up %v down %v, want 4 and 4", conn["upload"], conn["download"])
	}

	// The WebSocket sends a snapshot each interval; a tunnel opened
	// meanwhile shows up in a later one.
	ws := e.ws("/connections?interval=200")
	checkSnapshot(t, readWS(t, ws))
	c2 := tunnelTo(t, e.proxy(), e.echo)
	seen := false
	for range 5 {
		snap := readWS(t, ws)
		checkSnapshot(t, snap)
		if findConn(t, snap, localPort(c)) == nil {
			t.Fatal("the first tunnel left a later snapshot")
		}
		seen = seen || findConn(t, snap, localPort(c2)) != nil
	}
	if !seen {
		t.Error("the second tunnel never showed in five snapshots")
	}
	if status, body := e.do("GET", "/connections?interval=x", "", true); status != 400 {
		t.Errorf("bad interval: %d %s", status, body)
	}

	// DELETE one: the client sees its end, the registry says closed by user.
	id := conn["id"].(string)
	if status, _ := e.do("DELETE", "/connections/"+id, "", true); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", status)
	}
	waitEOF(t, c)
	xi, _ := xid.FromString(id)
	info := waitClosed(t, e.ctl.Registry(), xi)
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		t.Errorf("close reason %v, want closed by user", info.Err)
	}
	if status, _ := e.do("DELETE", "/connections/not-an-id", "", true); status != http.StatusNoContent {
		t.Errorf("DELETE of an unknown id: %d, want 204 as mihomo", status)
	}
	// DELETE all.
	if status, _ := e.do("DELETE", "/connections", "", true); status != http.StatusNoContent {
		t.Fatalf("DELETE all: %d", status)
	}
	waitEOF(t, c2)

	// The history holds both, newest first, with the id and metadata
	// /connections gave and the reason.
	// The client sees its end as the socket closes, a moment before the
	// record is finished: wait (bounded) for the second record.
	var closed []any
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		closed = typed[[]any](t, e.getJSON("/porthole/connections/closed"), "connections")
		if len(closed) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(closed) < 2 {
		t.Fatalf("closed history %v", closed)
	}
	var ids []string
	var prevEnd time.Time
	for i, x := range closed {
		m := x.(map[string]any)
		checkConn(t, m)
		end, err := time.Parse(time.RFC3339Nano, typed[string](t, m, "end"))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && end.After(prevEnd) {
			t.Errorf("history not newest first at %d", i)
		}
		prevEnd = end
		if m["closeReason"] != "closed by user" {
			t.Errorf("closeReason %v", m["closeReason"])
		}
		ids = append(ids, m["id"].(string))
	}
	if !slices.Contains(ids, id) {
		t.Errorf("history %v lacks %s", ids, id)
	}
	// The same metadata, but for the program, whose lookup may have
	// answered since.
	got := closed[slices.Index(ids, id)].(map[string]any)["metadata"].(map[string]any)
	for k, v := range md {
		if k != "process" && k != "processPath" && k != "uid" && fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("history metadata.%s = %v, /connections said %v", k, got[k], v)
		}
	}
}

func waitEOF(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("the client's connection did not end: %d %v", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitClosed waits for the record to be in history (the Closed event
// follows the owner's finish).
func waitClosed(t *testing.T, reg *registry.Registry, id xid.ID) registry.Info {
	t.Helper()
	snap, sub := reg.Subscribe()
	defer sub.Close()
	for _, in := range snap.Closed {
		if in.ID == id {
			return in
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case batch, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			for _, ev := range batch {
				if ev.Kind == registry.KindClosed && ev.Conn.ID == id {
					return ev.Conn
				}
			}
		case <-deadline:
			t.Fatalf("%s did not close", id)
		}
	}
}

func TestAPIModeChangesRouting(t *testing.T) {
	e := newAPIEnv(t)
	cfg := e.getJSON("/configs")
	if cfg["mode"] != "direct" {
		t.Fatalf("mode %v", cfg["mode"])
	}
	for _, k := range []string{"port", "socks-port", "redir-port", "tproxy-port", "mixed-port"} {
		typed[float64](t, cfg, k)
	}
	if typed[float64](t, cfg, "mixed-port") == 0 {
		t.Error("mixed-port 0 while running")
	}
	if tun := typed[map[string]any](t, cfg, "tun"); tun["enable"] != false {
		t.Errorf("tun %v", tun)
	}
	typed[bool](t, cfg, "allow-lan")
	typed[bool](t, cfg, "ipv6")
	if typed[string](t, cfg, "log-level") != "debug" {
		t.Errorf("log-level %v", cfg["log-level"])
	}

	if status, body := e.do("PATCH", "/configs", `{"mode":"Global"}`, true); status != http.StatusNoContent {
		t.Fatalf("PATCH global: %d %s", status, body)
	}
	if e.ctl.Config().Mode != "tunnel" || e.getJSON("/configs")["mode"] != "global" {
		t.Fatalf("mode after PATCH: %v", e.ctl.Config().Mode)
	}
	saved, err := config.Load(e.path)
	if err != nil || saved.Mode != "tunnel" || saved.API.Secret != apiSecret {
		t.Errorf("the file after PATCH: mode %q secret %q %v", saved.Mode, saved.API.Secret, err)
	}
	waitFor(t, e.ctl, "the tunnel", func(st Status) bool { return st.State == StateRunning && st.HasTunnel })
	c := tunnelTo(t, e.proxy(), e.echo)
	conn := findConn(t, e.getJSON("/connections"), localPort(c))
	if conn == nil {
		t.Fatal("the tunnel is not listed")
	}
	checkConn(t, conn)
	if ch := fmt.Sprint(conn["chains"]); ch != "["+e.exitName+" GLOBAL]" {
		t.Errorf("chains %s, want [%s GLOBAL]", ch, e.exitName)
	}
	xi, _ := xid.FromString(conn["id"].(string))
	if info, ok := e.ctl.Registry().Get(xi); !ok || info.Route != registry.RouteTunnel {
		t.Errorf("route %v, want tunnel", info.Route)
	}
	// The exit's delay test goes through it now.
	page := httpOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	d := e.getJSON("/proxies/" + e.exitName + "/delay?timeout=5000&url=" + url.QueryEscape("http://"+page+"/"))
	if typed[float64](t, d, "delay") < 1 {
		t.Errorf("exit delay %v", d)
	}
	if p := typed[map[string]any](t, e.getJSON("/proxies"), "proxies")[e.exitName].(map[string]any); p["alive"] != true {
		t.Errorf("the exit is not alive with the tunnel up: %v", p)
	}

	if conn["rule"] != "" || conn["rulePayload"] != "" {
		t.Errorf("rule %q payload %q in tunnel mode, want none (mihomo's global mode)", conn["rule"], conn["rulePayload"])
	}

	// Clash's "rule" is the rules mode. With no rule configured (and an
	// empty bypass list) every connection takes the default: the exit.
	if status, body := e.do("PATCH", "/configs", `{"mode":"rule"}`, true); status != http.StatusNoContent {
		t.Fatalf("PATCH rule: %d %s", status, body)
	}
	if e.ctl.Config().Mode != "rules" || e.getJSON("/configs")["mode"] != "rule" {
		t.Fatalf("mode after PATCH rule: %v", e.ctl.Config().Mode)
	}
	waitFor(t, e.ctl, "rules mode", func(st Status) bool { return st.State == StateRunning && st.Mode == "rules" && st.HasTunnel })
	cr := tunnelTo(t, e.proxy(), e.echo)
	conn = findConn(t, e.getJSON("/connections"), localPort(cr))
	if conn == nil {
		t.Fatal("the rules mode's tunnel is not listed")
	}
	checkConn(t, conn)
	if ch := fmt.Sprint(conn["chains"]); ch != "["+e.exitName+" GLOBAL]" || conn["rule"] != "Match" || conn["rulePayload"] != "" {
		t.Errorf("rules mode without rules: chains %s rule %q payload %q, want [%s GLOBAL] Match", ch, conn["rule"], conn["rulePayload"], e.exitName)
	}
	xi, _ = xid.FromString(conn["id"].(string))
	if info, ok := e.ctl.Registry().Get(xi); !ok || info.Route != registry.RouteTunnel || info.Exit != e.exitName || info.Rule.Kind != "default" {
		t.Errorf("record %+v, want the default through %s", info, e.exitName)
	}
	if rules := fmt.Sprint(e.getJSON("/rules")["rules"]); rules != "[map[index:0 payload: proxy:GLOBAL size:-1 type:Match]]" {
		t.Errorf("/rules in rules mode without rules: %s", rules)
	}
	for _, bad := range []string{`{"mode":"sideways"}`, `{"log-level":"loud"}`, `not json`} {
		if status, body := e.do("PATCH", "/configs", bad, true); status != 400 || !strings.Contains(string(body), `"message"`) {
			t.Errorf("PATCH %s: %d %s", bad, status, body)
		}
	}
	if status, _ := e.do("PATCH", "/configs", `{"mode":"direct","log-level":"warning"}`, true); status != 204 {
		t.Fatalf("PATCH direct: %d", status)
	}
	cfg = e.getJSON("/configs")
	if cfg["mode"] != "direct" || cfg["log-level"] != "warning" {
		t.Errorf("after PATCH: mode %v log-level %v", cfg["mode"], cfg["log-level"])
	}
	waitFor(t, e.ctl, "direct", func(st Status) bool { return st.State == StateRunning && !st.HasTunnel })
	c2 := tunnelTo(t, e.proxy(), e.echo)
	if ch := fmt.Sprint(findConn(t, e.getJSON("/connections"), localPort(c2))["chains"]); ch != "[DIRECT]" {
		t.Errorf("chains after direct: %s", ch)
	}
}

func TestAPIProxiesRulesVersion(t *testing.T) {
	e := newAPIEnv(t)
	v := e.getJSON("/version")
	if v["meta"] != true || v["version"] != "porthole-test" {
		t.Errorf("/version %v", v)
	}
	proxies := typed[map[string]any](t, e.getJSON("/proxies"), "proxies")
	for _, name := range []string{"DIRECT", "REJECT", "GLOBAL", e.exitName} {
		p, ok := proxies[name].(map[string]any)
		if !ok {
			t.Fatalf("no proxy %s in %v", name, proxies)
		}
		if typed[string](t, p, "name") != name || typed[string](t, p, "type") == "" {
			t.Errorf("%s: %v", name, p)
		}
		typed[[]any](t, p, "history")
		typed[map[string]any](t, p, "extra")
		typed[bool](t, p, "alive")
		typed[bool](t, p, "udp")
	}
	g := proxies["GLOBAL"].(map[string]any)
	if g["type"] != "Selector" || g["now"] != e.exitName || fmt.Sprint(g["all"]) != "["+e.exitName+" DIRECT]" {
		t.Errorf("GLOBAL %v", g)
	}
	if _, ok := proxies["DIRECT"].(map[string]any)["all"]; ok {
		t.Error("DIRECT has a member list")
	}
	if status, _ := e.do("PUT", "/proxies/GLOBAL", `{"name":"`+e.exitName+`"}`, true); status != 204 {
		t.Errorf("select the exit: %d", status)
	}
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"nowhere"}`, true); status != 400 {
		t.Errorf("select an unknown exit: %d %s", status, body)
	}
	if status, _ := e.do("PUT", "/proxies/DIRECT", `{"name":"x"}`, true); status != 400 {
		t.Errorf("select in DIRECT: %d", status)
	}
	if status, _ := e.do("GET", "/proxies/nope", "", true); status != 404 {
		t.Errorf("unknown proxy: %d", status)
	}

	// Delay: DIRECT answers; REJECT fails with 503; a silent server
	// times out with 504; the history records them.
	page := httpOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	d := e.getJSON("/proxies/DIRECT/delay?timeout=5000&url=" + url.QueryEscape("http://"+page+"/"))
	if typed[float64](t, d, "delay") < 1 {
		t.Errorf("delay %v", d)
	}
	if status, body := e.do("GET", "/proxies/REJECT/delay?timeout=1000&url=http://"+page+"/", "", true); status != 503 || !bytes.Contains(body, []byte(`"message"`)) {
		t.Errorf("REJECT delay: %d %s", status, body)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if status, _ := e.do("GET", "/proxies/DIRECT/delay?timeout=300&url=http://"+silent.Addr().String()+"/", "", true); status != 504 {
		t.Errorf("silent delay: %d, want 504", status)
	}
	if status, _ := e.do("GET", "/proxies/DIRECT/delay?url=http://"+page+"/", "", true); status != 400 {
		t.Errorf("delay without timeout: %d", status)
	}
	// The exit in direct mode: not reachable, said so.
	if status, _ := e.do("GET", "/proxies/"+e.exitName+"/delay?timeout=1000&url=http://"+page+"/", "", true); status != 503 {
		t.Errorf("exit delay in direct mode: %d", status)
	}
	hist := typed[[]any](t, typed[map[string]any](t, e.getJSON("/proxies"), "proxies")["DIRECT"].(map[string]any), "history")
	if len(hist) != 2 {
		t.Errorf("DIRECT history %v, want 2 entries", hist)
	}
	groups := typed[[]any](t, e.getJSON("/group"), "proxies")
	if len(groups) != 1 || groups[0].(map[string]any)["name"] != "GLOBAL" {
		t.Errorf("/group %v", groups)
	}
	for _, p := range []string{"/providers/proxies", "/providers/rules"} {
		if m := typed[map[string]any](t, e.getJSON(p), "providers"); len(m) != 0 {
			t.Errorf("%s: %v", p, m)
		}
	}
	rules := typed[[]any](t, e.getJSON("/rules"), "rules")
	if len(rules) != 1 {
		t.Fatalf("rules %v: want the final Match alone (empty bypass list)", rules)
	}
	r := rules[0].(map[string]any)
	for _, k := range []string{"type", "payload", "proxy"} {
		typed[string](t, r, k)
	}
	typed[float64](t, r, "size")
	typed[float64](t, r, "index")
	if r["type"] != "Match" || r["proxy"] != "DIRECT" {
		t.Errorf("rule %v", r)
	}
}

// httpOrigin serves h on loopback until the test ends and returns its
// host:port.
func httpOrigin(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestAPIAuthAndCORS(t *testing.T) {
	e := newAPIEnv(t)
	for _, h := range []string{"", "Bearer wrong", "Basic " + apiSecret, apiSecret, "Bearer"} {
		req, _ := http.NewRequest("GET", "http://"+e.api+"/connections", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || strings.TrimSpace(string(b)) != `{"message":"Unauthorized"}` {
			t.Errorf("Authorization %q: %d %s", h, resp.StatusCode, b)
		}
	}
	// ?token= counts on WebSocket upgrades only.
	if status, _ := e.do("GET", "/connections?token="+apiSecret, "", false); status != 401 {
		t.Errorf("?token= on plain GET: %d", status)
	}
	for _, q := range []string{"", "?token=wrong"} {
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+e.api+"/connections"+q, nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("WebSocket %q: %v %v", q, err, resp)
		}
	}
	hdr := http.Header{"Authorization": {"Bearer " + apiSecret}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+e.api+"/traffic", hdr)
	if err != nil {
		t.Fatalf("WebSocket with the header: %v", err)
	}
	readWS(t, c)
	c.Close()

	// Preflights pass before auth.
	for _, pna := range []bool{false, true} {
		req, _ := http.NewRequest("OPTIONS", "http://"+e.api+"/connections/abc", nil)
		req.Header.Set("Origin", "https://metacubex.github.io")
		req.Header.Set("Access-Control-Request-Method", "DELETE")
		req.Header.Set("Access-Control-Request-Headers", "authorization, x-thing")
		if pna {
			req.Header.Set("Access-Control-Request-Private-Network", "true")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != "*" ||
			h.Get("Access-Control-Allow-Methods") != "GET, POST, PUT, PATCH, DELETE" ||
			h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight (pna %v): %d %v", pna, resp.StatusCode, h)
		}
		allow := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"authorization", "content-type", "x-thing"} {
			if !strings.Contains(allow, want) {
				t.Errorf("Allow-Headers %q lacks %s", allow, want)
			}
		}
		if got := h.Get("Access-Control-Allow-Private-Network"); (got == "true") != pna {
			t.Errorf("pna %v: Allow-Private-Network %q", pna, got)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+e.api+"/version", nil)
	req.Header.Set("Origin", "https://metacubex.github.io")
	req.Header.Set("Authorization", "Bearer "+apiSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!slices.Contains(resp.Header.Values("Vary"), "Origin") {
		t.Errorf("ordinary answer: %d %v", resp.StatusCode, resp.Header)
	}
}

// lines reads n newline-delimited JSON objects from a streaming answer.
func lines(t *testing.T, e *apiEnv, path string, n int, each func(map[string]any)) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+e.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for range n {
		if !sc.Scan() {
			t.Fatalf("%s ended: %v", path, sc.Err())
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v in %q", path, err, sc.Text())
		}
		each(m)
	}
}

func TestAPITrafficMemoryLogs(t *testing.T) {
	e := newAPIEnv(t)
	c := tunnelTo(t, e.proxy(), e.echo)
	go func() { // traffic to see in /traffic; ends with the test's Cleanup
		buf := make([]byte, 32<<10)
		for range 200 {
			if _, err := c.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
		}
	}()
	moved := false
	lines(t, e, "/traffic", 3, func(m map[string]any) {
		moved = moved || typed[float64](t, m, "up") > 0 && typed[float64](t, m, "down") > 0
	})
	if !moved {
		t.Error("/traffic saw no bytes move in three seconds")
	}
	ws := e.ws("/traffic")
	for range 2 {
		m := readWS(t, ws)
		typed[float64](t, m, "up")
		typed[float64](t, m, "down")
	}
	first := true
	lines(t, e, "/memory", 2, func(m map[string]any) {
		in := typed[float64](t, m, "inuse")
		typed[float64](t, m, "oslimit")
		if first && in != 0 || !first && in == 0 {
			t.Errorf("memory %v (first %v): mihomo sends 0 first, then the figure", m, first)
		}
		first = false
	})
	m := readWS(t, e.ws("/memory"))
	typed[float64](t, m, "inuse")

	if status, body := e.do("GET", "/logs?level=loud", "", true); status != 400 || !bytes.Contains(body, []byte(`"message"`)) {
		t.Errorf("unknown level: %d %s", status, body)
	}
	// WebSocket at warning: info records are filtered out.
	lw := e.ws("/logs?level=warning")
	sl := e.ws("/logs?level=debug&format=structured")
	time.Sleep(100 * time.Millisecond) // let the streams subscribe: a record before that is not theirs
	e.log.Info("an info record", "k", "v")
	e.log.Warn("a warning record", "conn", "abc")
	got := readWS(t, lw)
	if got["type"] != "warning" || got["payload"] != "a warning record conn=abc" {
		t.Errorf("/logs warning: %v", got)
	}
	for {
		m := readWS(t, sl)
		if m["message"] != "an info record" {
			continue // the proxy's own debug records
		}
		typed[string](t, m, "time")
		if m["level"] != "info" || fmt.Sprint(m["fields"]) != "[map[key:k value:v]]" {
			t.Errorf("structured: %v", m)
		}
		break
	}
	// Streaming HTTP: a record logged while it is read.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			select {
			case <-time.After(50 * time.Millisecond):
				e.log.Error("an error record")
			case <-t.Context().Done():
				return
			}
		}
	}()
	lines(t, e, "/logs?level=error", 1, func(m map[string]any) {
		if m["type"] != "error" || m["payload"] != "an error record" {
			t.Errorf("/logs over HTTP: %v", m)
		}
	})
	<-done
}

func TestAPIEvents(t *testing.T) {
	e := newAPIEnv(t)
	ws := e.ws("/porthole/events")
	snap := readWS(t, ws)
	if snap["type"] != "snapshot" {
		t.Fatalf("first message %v", snap)
	}
	seq := typed[float64](t, snap, "seq")
	typed[[]any](t, snap, "live")
	typed[[]any](t, snap, "closed")
	c := tunnelTo(t, e.proxy(), e.echo)
	var kinds []string
	for !slices.Contains(kinds, "established") {
		m := readWS(t, ws)
		s := typed[float64](t, m, "seq")
		if s != seq+1 {
			t.Fatalf("seq %v after %v", s, seq)
		}
		seq = s
		if m["type"] == "stats" {
			continue
		}
		conn := typed[map[string]any](t, m, "connection")
		checkConn(t, conn)
		if conn["metadata"].(map[string]any)["sourcePort"] == localPort(c) {
			kinds = append(kinds, m["type"].(string))
		}
	}
	// The program's lookup answers beside the connection, before or
	// after it is established.
	if kinds[0] != "opened" || len(slices.DeleteFunc(kinds, func(k string) bool { return k == "process" })) != 2 {
		t.Errorf("events %v", kinds)
	}
	if status, _ := e.do("GET", "/porthole/events", "", true); status != 400 {
		t.Errorf("/porthole/events without upgrade: %d", status)
	}
}

// TestAPIWithThousandConnections: the API answers, whole and in shape,
// while 1,000 connections are open.
func TestAPIWithThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	e := newAPIEnv(t)
	const n = 1000
	for range n {
		tunnelTo(t, e.proxy(), e.echo)
	}
	ws := e.ws("/connections?interval=500")
	for range 3 {
		snap := readWS(t, ws)
		if got := len(typed[[]any](t, snap, "connections")); got != n {
			t.Fatalf("%d connections listed, want %d", got, n)
		}
	}
	snap := e.getJSON("/connections")
	checkSnapshot(t, snap)
	if got := len(snap["connections"].([]any)); got != n {
		t.Fatalf("%d connections, want %d", got, n)
	}
	if v := e.getJSON("/version"); v["meta"] != true {
		t.Errorf("/version %v", v)
	}
}

func TestAPIRestartsWithSettingsAndSecret(t *testing.T) {
	e := newAPIEnv(t)
	old := e.api
	saved, err := e.ctl.SaveSettings(e.path, func(c *config.Config) { c.API.Secret = "another" })
	if err != nil || saved.APIErr != nil {
		t.Fatal(err, saved.APIErr)
	}
	e.api = e.ctl.APIStatus().Addr
	if e.api == "" || e.api == old {
		t.Fatalf("API at %q after the change (was %s)", e.api, old)
	}
	if status, _ := e.do("GET", "/version", "", true); status != 401 {
		t.Errorf("old secret after the change: %d", status)
	}
	// Off, then beyond loopback without a secret: refused, the proxy runs.
	if _, err := e.ctl.SaveSettings(e.path, func(c *config.Config) { c.API.Listen = "" }); err != nil {
		t.Fatal(err)
	}
	if st := e.ctl.APIStatus(); st.Addr != "" || st.Err != nil {
		t.Errorf("off: %+v", st)
	}
	if err := e.ctl.Apply(func() config.Config { c := e.ctl.Config(); c.API = config.API{Listen: "0.0.0.0:0"}; return c }()); !errors.Is(err, ErrAPINoSecret) {
		t.Errorf("beyond loopback without a secret: %v", err)
	}
	if st := e.ctl.Status(); st.State != StateRunning {
		t.Errorf("the proxy: %v", st.State)
	}
	// A port in use: reported, the proxy runs.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = e.ctl.Apply(func() config.Config {
		c := e.ctl.Config()
		c.API = config.API{Listen: taken.Addr().String(), Secret: "s"}
		return c
	}())
	if !errors.Is(err, api.ErrPortInUse) || !errors.Is(e.ctl.APIStatus().Err, api.ErrPortInUse) {
		t.Errorf("port in use: %v / %v", err, e.ctl.APIStatus().Err)
	}
	if st := e.ctl.Status(); st.State != StateRunning {
		t.Errorf("the proxy: %v", st.State)
	}
}

func TestPrepareAPISecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := config.Default()
	cfg.Mode = "tunnel" // as if from a flag: must not reach the file
	cfg.Exit = "wss://exit.example/porthole"
	if err := PrepareAPISecret(&cfg, path, true); err != nil {
		t.Fatal(err)
	}
	if len(cfg.API.Secret) < 20 {
		t.Fatalf("secret %q", cfg.API.Secret)
	}
	onDisk, err := config.Load(path)
	if err != nil || onDisk.API.Secret != cfg.API.Secret || onDisk.Mode != "direct" {
		t.Fatalf("file: secret %q mode %q %v", onDisk.API.Secret, onDisk.Mode, err)
	}
	// A secret saved meanwhile (another launch) wins over a new one.
	again := config.Default()
	if err := PrepareAPISecret(&again, path, true); err != nil || again.API.Secret != onDisk.API.Secret {
		t.Errorf("second: %q %v", again.API.Secret, err)
	}
	off := config.Default()
	off.API.Listen = ""
	if err := PrepareAPISecret(&off, path, true); err != nil || off.API.Secret != "" {
		t.Errorf("API off: %q %v", off.API.Secret, err)
	}
	broken := config.Default()
	if err := PrepareAPISecret(&broken, path, false); err == nil || broken.API.Secret == "" {
		t.Errorf("unsavable: %q %v", broken.API.Secret, err)
	}
}

func TestDashboardURL(t *testing.T) {
	got := DashboardURL(config.API{Listen: "127.0.0.1:9090", Secret: "a b"}, "")
	if want := "https://metacubex.github.io/metacubexd/#/setup?hostname=127.0.0.1&port=9090&secret=a+b"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	got = DashboardURL(config.API{Listen: "0.0.0.0:9090", Secret: "s", DashboardURL: "http://127.0.0.1:9090/ui/"}, "[::]:9091")
	if want := "http://127.0.0.1:9090/ui/#/setup?hostname=127.0.0.1&port=9091&secret=s"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
