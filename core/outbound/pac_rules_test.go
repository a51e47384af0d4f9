package outbound

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/internal/childproc"
)

// pacShim defines the PAC functions a browser gives the script (only the
// ones Porthole's PAC uses; isInNet for IPv4 literals, never resolving).
const pacShim = `
function isInNet(host, pattern, mask) {
  function n(s) { var p = s.split("."); return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0; }
  var m = n(mask); return ((n(host) & m) >>> 0) == ((n(pattern) & m) >>> 0);
}
`

// runPAC evaluates the PAC with node for each host and returns the answers.
func runPAC(t *testing.T, pac string, hosts []string) []string {
	t.Helper()
	node := childproc.Need(t, "node", "cannot run the PAC")
	hj, err := json.Marshal(hosts)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "pac.js")
	src := pacShim + pac + "\nvar hs = " + string(hj) + ";\nfor (var i = 0; i < hs.length; i++) console.log(FindProxyForURL('https://' + hs[i] + '/', hs[i]));\n"
	if err := os.WriteFile(script, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, out, pac)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func rulesRouter(t *testing.T, list []rules.Rule, opt rules.Options, bypass []string) *Router {
	t.Helper()
	b, err := ParseBypass(bypass)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRouter(ModeRules, b, NewDirect(0, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(list, opt)
	if err != nil {
		t.Fatal(err)
	}
	r.SetRules(set)
	return r
}

func TestRulesPAC(t *testing.T) {
	const proxied = "PROXY 127.0.0.1:8088; DIRECT"
	cases := []struct {
		name  string
		list  []rules.Rule
		opt   rules.Options
		hosts map[string]string // host → PAC answer
	}{
		{
			name: "kinds in order",
			list: []rules.Rule{
				{Kind: "domain", Value: "tunnel.corp.test", Action: "tunnel"},
				{Kind: "domain-suffix", Value: "corp.test", Action: "direct"},
				{Kind: "domain-keyword", Value: "ads", Action: "reject"},
				{Kind: "domain-keyword", Value: "intra", Action: "direct"},
				{Kind: "ip-cidr", Value: "192.0.2.0/24", Action: "direct"},
				{Kind: "ip-cidr", Value: "2001:db8::/32", Action: "reject"},
				{Kind: "port", Value: "22", Action: "direct"}, // left out: direct
				{Kind: "match", Action: "tunnel"},
			},
			hosts: map[string]string{
				"tunnel.corp.test": proxied, "x.corp.test": "DIRECT", "CORP.TEST.": "DIRECT",
				"ads.corp.test": "DIRECT", "ads.other": proxied, "myintranet.org": "DIRECT",
				"192.0.2.7": "DIRECT", "198.51.100.1": proxied, "2001:db8::1": proxied,
				"localhost": "DIRECT", "10.1.2.3": "DIRECT", "printer.local": "DIRECT", "elsewhere.net": proxied,
			},
		},
		{
			name: "a tunnel rule it cannot express ends it",
			list: []rules.Rule{
				{Kind: "domain", Value: "a.test", Action: "direct"},
				{Kind: "app", Value: "curl", Action: "tunnel"},
				{Kind: "domain", Value: "b.test", Action: "direct"},
			},
			opt:   rules.Options{Default: "direct"},
			hosts: map[string]string{"a.test": "DIRECT", "b.test": proxied, "c.test": proxied},
		},
		{
			name:  "default direct",
			list:  []rules.Rule{{Kind: "domain-suffix", Value: "t.test", Action: "tunnel"}},
			opt:   rules.Options{Default: "direct"},
			hosts: map[string]string{"x.t.test": proxied, "c.test": "DIRECT"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rulesRouter(t, c.list, c.opt, DefaultBypass)
			var hosts []string
			for h := range c.hosts {
				hosts = append(hosts, h)
			}
			got := runPAC(t, r.PAC("127.0.0.1:8088"), hosts)
			for i, h := range hosts {
				if got[i] != c.hosts[h] {
					t.Errorf("%s: %s, want %s", h, got[i], c.hosts[h])
				}
				// The PAC never says DIRECT where the proxy would not.
				if got[i] == "DIRECT" {
					if d := r.Route(strings.TrimSuffix(strings.ToLower(h), ".")); d != registry.RouteDirect && d != registry.RouteBypass {
						t.Errorf("%s: PAC direct, router %v", h, d)
					}
				}
			}
		})
	}
}

func TestRouterModes(t *testing.T) {
	b, _ := ParseBypass([]string{"lan.test"})
	tun := NewDirect(0, nil)
	for _, c := range []struct {
		mode  Mode
		host  string
		route registry.Route
		rule  string
	}{
		{ModeDirect, "x.test", registry.RouteDirect, "mode: direct"},
		{ModeTunnel, "x.test", registry.RouteTunnel, "mode: tunnel"},
		{ModeTunnel, "lan.test", registry.RouteBypass, "bypass → direct"},
		{ModeRules, "lan.test", registry.RouteBypass, "bypass → direct"},
		{ModeRules, "x.test", registry.RouteTunnel, "default → tunnel"},
	} {
		r, err := NewRouter(c.mode, b, NewDirect(0, nil), tun)
		if err != nil {
			t.Fatal(err)
		}
		d := r.Decide(t.Context(), &rules.Query{Host: c.host})
		if d.Route != c.route || d.Rule.String() != c.rule {
			t.Errorf("%s %s: %v %q", c.mode, c.host, d.Route, d.Rule.String())
		}
	}
	r := rulesRouter(t, []rules.Rule{{Kind: "domain", Value: "x.test", Action: "reject"}, {Kind: "domain", Value: "y.test", Action: "tunnel:far"}}, rules.Options{}, nil)
	if d := r.Decide(t.Context(), &rules.Query{Host: "x.test"}); d.Route != registry.RouteReject || d.Rule.Index != 0 {
		t.Errorf("reject: %+v", d)
	}
	if d := r.Decide(t.Context(), &rules.Query{Host: "y.test"}); d.Route != registry.RouteTunnel || d.Exit != "far" {
		t.Errorf("named exit: %+v", d)
	}
	if _, err := r.Dialer(registry.RouteTunnel).DialContext(t.Context(), "tcp", "y.test:1"); !errors.Is(err, ErrNoTunnel) {
		t.Errorf("no tunnel: %v", err)
	}
}

// TestRulesPACFollowsSetRules: the script is cached per rule set, and a
// new set gives a new script.
func TestRulesPACFollowsSetRules(t *testing.T) {
	r := rulesRouter(t, []rules.Rule{{Kind: "domain", Value: "one.test", Action: "direct"}}, rules.Options{}, nil)
	first := r.PAC("127.0.0.1:1")
	if !strings.Contains(first, `"one.test"`) || r.PAC("127.0.0.1:1") != first {
		t.Fatalf("first script:\n%s", first)
	}
	if other := r.PAC("127.0.0.1:2"); !strings.Contains(other, "127.0.0.1:2") {
		t.Errorf("another proxy address kept the old script")
	}
	set, err := rules.Compile([]rules.Rule{{Kind: "domain", Value: "two.test", Action: "direct"}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.SetRules(set)
	if next := r.PAC("127.0.0.1:1"); strings.Contains(next, `"one.test"`) || !strings.Contains(next, `"two.test"`) {
		t.Errorf("after SetRules:\n%s", next)
	}
}
