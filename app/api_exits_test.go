package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/app/config"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/internal/filetest"
	echoorigin "porthole/internal/origin"
	"porthole/internal/upstreamtest"
)

// twoExits are two SOCKS5 exits, "one" and "two" (real microsocks), with
// the manual policy on "one".
func twoExits(t *testing.T, mode string) (cfg config.Config, one, two *upstreamtest.Proxy) {
	t.Helper()
	one, two = upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	cfg = config.Default()
	cfg.Mode = mode
	cfg.Bypass = []string{}
	cfg.Exits = []config.Exit{
		{Name: "one", Kind: "socks5", URL: one.URL},
		{Name: "two", Kind: "socks5", URL: two.URL},
	}
	cfg.ExitPolicy = "manual"
	return cfg, one, two
}

// waitProxies polls /proxies until cond holds for it (bounded: 10 s).
func waitProxies(t *testing.T, e *apiEnv, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for range 1000 {
		p := typed[map[string]any](t, e.getJSON("/proxies"), "proxies")
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s within 10 s", what)
	return nil
}

// lastDelay is the latest delay in a proxy's history (-1 when it has none).
func lastDelay(p any) float64 {
	h, _ := p.(map[string]any)["history"].([]any)
	if len(h) == 0 {
		return -1
	}
	d, _ := h[len(h)-1].(map[string]any)["delay"].(float64)
	return d
}

// connOfClient is the live connection of the client c, from /connections,
// with the registry's record of it.
func (e *apiEnv) connOfClient(c net.Conn) (map[string]any, registry.Info) {
	e.t.Helper()
	conn := findConn(e.t, e.getJSON("/connections"), localPort(c))
	if conn == nil {
		e.t.Fatalf("the connection from %s is not listed", c.LocalAddr())
	}
	checkConn(e.t, conn)
	id, err := xid.FromString(conn["id"].(string))
	if err != nil {
		e.t.Fatal(err)
	}
	info, ok := e.ctl.Registry().Get(id)
	if !ok {
		e.t.Fatalf("%s is not in the registry", id)
	}
	return conn, info
}

// delay asks /proxies/NAME/delay for url and returns the status and body.
func (e *apiEnv) delay(name, target string) (int, string) {
	e.t.Helper()
	status, body := e.do("GET", "/proxies/"+name+"/delay?timeout=5000&url="+url.QueryEscape(target), "", true)
	return status, string(body)
}

// TestAPIExitsSelectAndDelay: /proxies lists both exits with the latency
// their health check measured; PUT GLOBAL is the manual pick (saved, no
// restart) and the next connection goes through the other exit; a delay
// test goes through the exit it names and no other.
func TestAPIExitsSelectAndDelay(t *testing.T) {
	echo := echoorigin.Echo(t)
	cfg, one, _ := twoExits(t, "tunnel")
	e := startAPIEnv(t, cfg)
	e.echo = echo

	proxies := waitProxies(t, e, "latency of both exits", func(p map[string]any) bool {
		return lastDelay(p["one"]) > 0 && lastDelay(p["two"]) > 0
	})
	for _, name := range []string{"one", "two"} {
		p := proxies[name].(map[string]any)
		if p["name"] != name || p["type"] != "Socks5" || p["alive"] != true || p["udp"] != false {
			t.Errorf("%s: %v", name, p)
		}
		typed[map[string]any](t, p, "extra")
	}
	g := proxies["GLOBAL"].(map[string]any)
	if g["type"] != "Selector" || g["now"] != "one" || fmt.Sprint(g["all"]) != "[one two DIRECT]" {
		t.Errorf("GLOBAL %v", g)
	}

	// Tunnel mode with an empty bypass list: everything through GLOBAL.
	if rules := fmt.Sprint(e.getJSON("/rules")["rules"]); rules != "[map[index:0 payload: proxy:GLOBAL size:-1 type:Match]]" {
		t.Errorf("/rules in tunnel mode: %s", rules)
	}

	c1 := tunnelTo(t, e.proxy(), e.echo)
	conn, info := e.connOfClient(c1)
	if ch := fmt.Sprint(conn["chains"]); ch != "[one GLOBAL]" || info.Exit != "one" {
		t.Errorf("first tunnel: chains %s, record's exit %q; want [one GLOBAL], one", ch, info.Exit)
	}

	addr := e.proxy()
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"two"}`, true); status != http.StatusNoContent {
		t.Fatalf("PUT GLOBAL two: %d %s", status, body)
	}
	if e.proxy() != addr {
		t.Error("selecting an exit restarted the proxy")
	}
	if g := e.getJSON("/proxies/GLOBAL"); g["now"] != "two" {
		t.Errorf("GLOBAL after PUT: %v", g)
	}
	if groups := typed[[]any](t, e.getJSON("/group"), "proxies"); len(groups) != 1 || groups[0].(map[string]any)["now"] != "two" {
		t.Errorf("/group after PUT: %v", groups)
	}
	if saved, err := config.Load(e.path); err != nil || saved.ExitSelected != "two" {
		t.Errorf("saved exit_selected %q, %v", saved.ExitSelected, err)
	}
	c2 := tunnelTo(t, e.proxy(), e.echo)
	conn, info = e.connOfClient(c2)
	if ch := fmt.Sprint(conn["chains"]); ch != "[two GLOBAL]" || info.Exit != "two" {
		t.Errorf("after selecting two: chains %s, record's exit %q", ch, info.Exit)
	}
	// The first tunnel kept its exit and still works.
	if _, err := c1.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if b := readN(t, c1, 4); b != "more" {
		t.Errorf("first tunnel after the switch: %q", b)
	}
	if conn, _ := e.connOfClient(c1); fmt.Sprint(conn["chains"]) != "[one GLOBAL]" {
		t.Errorf("the first tunnel's chains became %v", conn["chains"])
	}

	for _, bad := range []struct{ path, body, why string }{
		{"/proxies/one", `{"name":"two"}`, "an exit is not a selector"},
		{"/proxies/GLOBAL", `{"name":"DIRECT"}`, "DIRECT is the direct mode"},
		{"/proxies/GLOBAL", `{"name":"three"}`, "no such exit"},
	} {
		if status, body := e.do("PUT", bad.path, bad.body, true); status != http.StatusBadRequest || !strings.Contains(string(body), `"message"`) {
			t.Errorf("PUT %s %s (%s): %d %s", bad.path, bad.body, bad.why, status, body)
		}
	}

	// Delay through each exit, then with one gone: its test fails (no
	// other exit stands in for it), two's still passes.
	page := "http://" + httpOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })) + "/"
	for _, name := range []string{"one", "two", "GLOBAL"} {
		if status, body := e.delay(name, page); status != 200 || !strings.Contains(body, `"delay":`) {
			t.Errorf("delay of %s: %d %s", name, status, body)
		}
	}
	one.Kill(t)
	if status, body := e.delay("one", page); status != http.StatusServiceUnavailable || !strings.Contains(body, `"message"`) {
		t.Errorf("delay through the killed exit: %d %s", status, body)
	}
	if status, body := e.delay("two", page); status != 200 {
		t.Errorf("delay of two with one gone: %d %s", status, body)
	}
	waitProxies(t, e, "exit one not alive", func(p map[string]any) bool {
		return p["one"].(map[string]any)["alive"] == false && p["two"].(map[string]any)["alive"] == true
	})

	// Under the failover policy the policy picks: what it uses may be
	// chosen (nothing changes), another exit is refused, naming why.
	saved, err := e.ctl.SaveSettings(e.path, func(c *config.Config) { c.ExitPolicy = "failover" })
	if err != nil || saved.StartErr != nil {
		t.Fatalf("failover: %v %v", err, saved.StartErr)
	}
	waitProxies(t, e, "failover on two", func(p map[string]any) bool { return p["GLOBAL"].(map[string]any)["now"] == "two" })
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"two"}`, true); status != http.StatusNoContent {
		t.Errorf("PUT the failover's own pick: %d %s", status, body)
	}
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"one"}`, true); status != http.StatusBadRequest || !strings.Contains(string(body), "failover") {
		t.Errorf("PUT another exit under failover: %d %s", status, body)
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %q: %v", buf, err)
	}
	return string(buf)
}

// TestAPIRulesNamedExit: in rules mode a rule naming an exit sends the
// connection through that exit although the policy picks the other (the
// rule's Decision.Exit → DialInfo.Exit → the group), the default goes
// through the policy's, a direct rule and a reject rule do what they say;
// /connections shows each one's chains and rule, /rules the whole list
// with mihomo's types, the bypass list first.
func TestAPIRulesNamedExit(t *testing.T) {
	echo := echoorigin.Echo(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	page := httpOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	cfg, _, _ := twoExits(t, "rules")
	cfg.Bypass = []string{"*.lan.example", "192.0.2.1", "fd00::/8"} // nothing of loopback
	cfg.Rules = []rules.Rule{
		{Kind: "domain", Value: "localhost", Action: "direct"},
		{Kind: "domain-keyword", Value: "blocked", Action: "reject"},
		{Kind: "port", Value: echoPort, Action: "tunnel:two"},
		{Kind: "ip-cidr", Value: "10.0.0.0/8", Action: "direct"},
	}
	// The rules file finds the provider beside it.
	ads := filetest.Write(t, "ads.yaml", "payload:\n  - '+.ads.example'\n  - 'tracker.example'\n")
	cfg.RulesFile = filepath.Join(filepath.Dir(ads), "rules.list")
	if err := os.WriteFile(cfg.RulesFile, []byte("RULE-SET,ads,REJECT\nDOMAIN-SUFFIX,corp.example,DIRECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startAPIEnv(t, cfg)
	e.echo = echo

	var got []string
	for _, r := range typed[[]any](t, e.getJSON("/rules"), "rules") {
		m := r.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v %v %v", m["index"], m["type"], m["payload"], m["proxy"], m["size"]))
	}
	want := []string{
		"0 DomainSuffix lan.example DIRECT -1",
		"1 IPCIDR 192.0.2.1/32 DIRECT -1",
		"2 IPCIDR fd00::/8 DIRECT -1",
		"3 Domain localhost DIRECT -1",
		"4 DomainKeyword blocked REJECT -1",
		"5 DstPort " + echoPort + " two -1",
		"6 IPCIDR 10.0.0.0/8 DIRECT -1",
		"7 RuleSet ads REJECT 2",
		"8 DomainSuffix corp.example DIRECT -1",
		"9 Match  GLOBAL -1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("/rules:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The port rule names two; the policy's pick is one.
	named := tunnelTo(t, e.proxy(), echo)
	conn, info := e.connOfClient(named)
	if ch := fmt.Sprint(conn["chains"]); ch != "[two]" || conn["rule"] != "DstPort" || conn["rulePayload"] != echoPort {
		t.Errorf("the named exit's connection: chains %s rule %v payload %v", ch, conn["rule"], conn["rulePayload"])
	}
	if info.Exit != "two" || info.Route != registry.RouteTunnel || info.Rule.Action != "tunnel:two" {
		t.Errorf("the named exit's record: exit %q route %v rule %+v", info.Exit, info.Route, info.Rule)
	}
	// No rule matches the page's port: the default, through one.
	def, status := connectThrough(t, e.proxy(), page)
	if status != http.StatusOK {
		t.Fatalf("CONNECT %s: %d", page, status)
	}
	conn, info = e.connOfClient(def)
	if ch := fmt.Sprint(conn["chains"]); ch != "[one GLOBAL]" || conn["rule"] != "Match" || conn["rulePayload"] != "" || info.Exit != "one" {
		t.Errorf("the default's connection: chains %s rule %v payload %v exit %q", ch, conn["rule"], conn["rulePayload"], info.Exit)
	}
	// localhost matches the domain rule before the port rule: direct.
	direct, status := connectThrough(t, e.proxy(), net.JoinHostPort("localhost", echoPort))
	if status != http.StatusOK {
		t.Fatalf("CONNECT localhost: %d", status)
	}
	conn, info = e.connOfClient(direct)
	if ch := fmt.Sprint(conn["chains"]); ch != "[DIRECT]" || conn["rule"] != "Domain" || conn["rulePayload"] != "localhost" || info.Exit != "" {
		t.Errorf("the direct rule's connection: chains %s rule %v payload %v exit %q", ch, conn["rule"], conn["rulePayload"], info.Exit)
	}
	// The provider's entry is rejected; the history shows it so.
	if _, status := connectThrough(t, e.proxy(), "t.ads.example:443"); status != http.StatusForbidden {
		t.Errorf("CONNECT to a rejected name: %d, want 403", status)
	}
	var rejected map[string]any
	for _, x := range typed[[]any](t, e.getJSON("/porthole/connections/closed"), "connections") {
		if m := x.(map[string]any); m["metadata"].(map[string]any)["host"] == "t.ads.example" {
			rejected = m
		}
	}
	if rejected == nil {
		t.Fatal("the rejected connection is not in the history")
	}
	checkConn(t, rejected)
	if ch := fmt.Sprint(rejected["chains"]); ch != "[REJECT]" || rejected["rule"] != "RuleSet" || rejected["rulePayload"] != "ads" {
		t.Errorf("the rejected record: chains %s rule %v payload %v", ch, rejected["rule"], rejected["rulePayload"])
	}

	// GLOBAL switches only what the policy picks: the named rule keeps
	// sending its connections to two, the default follows the pick.
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"two"}`, true); status != http.StatusNoContent {
		t.Fatalf("PUT GLOBAL two: %d %s", status, body)
	}
	def2, _ := connectThrough(t, e.proxy(), page)
	if conn, info := e.connOfClient(def2); fmt.Sprint(conn["chains"]) != "[two GLOBAL]" || info.Exit != "two" {
		t.Errorf("the default after selecting two: chains %v exit %q", conn["chains"], info.Exit)
	}
	if status, body := e.do("PUT", "/proxies/GLOBAL", `{"name":"one"}`, true); status != http.StatusNoContent {
		t.Fatalf("PUT GLOBAL one: %d %s", status, body)
	}
	named2 := tunnelTo(t, e.proxy(), echo)
	if conn, info := e.connOfClient(named2); fmt.Sprint(conn["chains"]) != "[two]" || info.Exit != "two" {
		t.Errorf("the named rule after selecting one: chains %v exit %q", conn["chains"], info.Exit)
	}
}

// The bypass list's entries as the Clash rules that match the same.
func TestBypassRule(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"localhost", "Domain localhost DIRECT"},
		{"Example.COM.", "Domain example.com DIRECT"},
		{"*.local", "DomainSuffix local DIRECT"},
		{".corp.example", "DomainSuffix corp.example DIRECT"},
		{"10.1.2.3/8", "IPCIDR 10.0.0.0/8 DIRECT"},
		{"::1", "IPCIDR ::1/128 DIRECT"},
		{"[fd00::1]", "IPCIDR fd00::1/128 DIRECT"},
		{"192.0.2.1", "IPCIDR 192.0.2.1/32 DIRECT"},
		{"<local>", "DomainWildcard * DIRECT"},
	} {
		r, ok := bypassRule(c.in)
		if got := fmt.Sprintf("%s %s %s", r.Type, r.Payload, r.Proxy); !ok || got != c.want || r.Size != -1 {
			t.Errorf("%q: %q %v size %d, want %q", c.in, got, ok, r.Size, c.want)
		}
	}
	if _, ok := bypassRule("  "); ok {
		t.Error("an empty entry became a rule")
	}
}

// TestAPIRulesModeWithoutExit: a dashboard's "rule" for a user with no
// exit and no rules would send everything to a tunnel that is not there:
// refused, saying so, the mode unchanged. Rules that end in a direct match
// need no exit: taken, and the match decides.
func TestAPIRulesModeWithoutExit(t *testing.T) {
	echo := echoorigin.Echo(t)
	cfg := config.Default()
	cfg.Bypass = []string{}
	e := startAPIEnv(t, cfg)
	status, body := e.do("PATCH", "/configs", `{"mode":"rule"}`, true)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "no rule matches") {
		t.Errorf("PATCH rule without exit or rules: %d %s", status, body)
	}
	if e.ctl.Config().Mode != "direct" {
		t.Errorf("mode %q after the refusal", e.ctl.Config().Mode)
	}
	saved, err := e.ctl.SaveSettings(e.path, func(c *config.Config) {
		c.Rules = []rules.Rule{{Kind: "domain-keyword", Value: "blocked", Action: "reject"}, {Kind: "match", Action: "direct"}}
	})
	if err != nil || saved.StartErr != nil {
		t.Fatalf("rules: %v %v", err, saved.StartErr)
	}
	if status, body := e.do("PATCH", "/configs", `{"mode":"rule"}`, true); status != http.StatusNoContent {
		t.Fatalf("PATCH rule with a direct match: %d %s", status, body)
	}
	waitFor(t, e.ctl, "rules mode", func(st Status) bool { return st.State == StateRunning && st.Mode == "rules" })
	conn, info := e.connOfClient(tunnelTo(t, e.proxy(), echo))
	if fmt.Sprint(conn["chains"]) != "[DIRECT]" || conn["rule"] != "Match" || conn["rulePayload"] != "" || info.Rule.Index != 1 {
		t.Errorf("the match rule's connection: chains %v rule %v payload %v record %+v", conn["chains"], conn["rule"], conn["rulePayload"], info.Rule)
	}
	var got []string
	for _, r := range typed[[]any](t, e.getJSON("/rules"), "rules") {
		m := r.(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v", m["type"], m["payload"], m["proxy"]))
	}
	if want := []string{"DomainKeyword blocked REJECT", "Match  DIRECT"}; !slices.Equal(got, want) {
		t.Errorf("/rules %q, want %q (no default after a match rule)", got, want)
	}
}
