package rules

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"porthole/core/registry"
)

func mustCompile(t testing.TB, list []Rule, opt Options) *Set {
	t.Helper()
	s, err := Compile(list, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func r(kind, value, action string) Rule { return Rule{Kind: kind, Value: value, Action: action} }

func match(s *Set, host string, port uint16) Verdict {
	return s.Match(context.Background(), &Query{Host: host, Port: port, Inbound: registry.ProtoConnect})
}

func TestMatchKindsAndFirstMatch(t *testing.T) {
	s := mustCompile(t, []Rule{
		r(KindDomain, "exact.example.com", "reject"),                          // 0
		r(KindDomainSuffix, "example.com", "direct"),                          // 1
		r(KindDomainKeyword, "tracker", "reject"),                             // 2
		r(KindIPCIDR, "10.0.0.0/8", "direct"),                                 // 3
		r(KindIPCIDR, "10.1.0.0/16", "reject"),                                // 4: shadowed by 3
		r(KindIPCIDR, "2001:db8::/32", "reject"),                              // 5
		r(KindPort, "8000-8999", "direct"),                                    // 6
		r(KindInbound, "socks4", "reject"),                                    // 7
		{Kind: KindDomainSuffix, Value: "corp.test", Action: "tunnel:office"}, // 8
		r(KindMatch, "", "tunnel"),                                            // 9
	}, Options{})
	cases := []struct {
		host string
		port uint16
		idx  int
	}{
		{"exact.example.com", 443, 0},
		{"EXACT.Example.COM.", 443, 0},
		{"example.com", 443, 1},
		{"a.b.example.com", 443, 1},
		{"notexample.com", 443, 9},
		{"ads.tracker.net", 443, 2},
		{"mytrackerx.org", 80, 2},
		{"tracker.example.com", 443, 1}, // the suffix rule comes first
		{"10.9.9.9", 443, 3},
		{"10.1.2.3", 443, 3},
		{"[2001:db8::1]", 443, 5},
		{"2001:db8:ffff::1", 443, 5},
		{"::ffff:10.0.0.1", 443, 3},
		{"2001:db9::1", 443, 9},
		{"other.net", 8080, 6},
		{"other.net", 9000, 9},
		{"x.corp.test", 443, 8},
	}
	for _, c := range cases {
		v := match(s, c.host, c.port)
		if v.Index != c.idx {
			t.Errorf("%s:%d: rule %d (%v), want %d", c.host, c.port, v.Index, v.Rule, c.idx)
		}
	}
	v := match(s, "x.corp.test", 443)
	if v.Action != ActionTunnel || v.Exit != "office" || v.Rule.Action != "tunnel:office" {
		t.Errorf("named exit: %+v", v)
	}
	v = s.Match(context.Background(), &Query{Host: "other.net", Port: 1, Inbound: registry.ProtoSOCKS4})
	if v.Index != 7 || v.Action != ActionReject {
		t.Errorf("inbound: %+v", v)
	}
	if got := v.Rule.String(); got != "#8 inbound socks4 → reject" {
		t.Errorf("String: %q", got)
	}
}

func TestDefaultAction(t *testing.T) {
	s := mustCompile(t, []Rule{r(KindDomain, "a.test", "reject")}, Options{})
	if v := match(s, "b.test", 1); v.Index != -1 || v.Action != ActionTunnel || v.Rule.String() != "default → tunnel" {
		t.Errorf("default: %+v %q", v, v.Rule.String())
	}
	s = mustCompile(t, nil, Options{Default: "direct"})
	if v := match(s, "b.test", 1); v.Action != ActionDirect {
		t.Errorf("default direct: %+v", v)
	}
	if _, err := Compile(nil, Options{Default: "sideways"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad default: %v", err)
	}
}

func TestIDN(t *testing.T) {
	s := mustCompile(t, []Rule{r(KindDomainSuffix, "Bücher.Example.", "reject")}, Options{})
	if s.Rules()[0].Value != "xn--bcher-kva.example" {
		t.Fatalf("normalised to %q", s.Rules()[0].Value)
	}
	for _, h := range []string{"bücher.example", "www.BÜCHER.example.", "xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE"} {
		if v := match(s, h, 443); v.Index != 0 {
			t.Errorf("%s: %+v", h, v)
		}
	}
	if v := match(s, "buecher.example", 443); v.Index != -1 {
		t.Errorf("other name matched: %+v", v)
	}
}

func TestPortRanges(t *testing.T) {
	var list []Rule
	for i := range 20 { // more than 16: the table form
		list = append(list, r(KindPort, strconv.Itoa(1000+i*10)+"-"+strconv.Itoa(1000+i*10+4), "direct"))
	}
	list = append(list, r(KindPort, "65535", "reject"))
	for _, s := range []*Set{mustCompile(t, list, Options{}), mustCompile(t, list[15:], Options{})} {
		off := 0
		if s.Len() < len(list) {
			off = 15
		}
		for p := 1; p <= 65535; p++ {
			want := -1
			if p >= 1000 && p < 1200 && (p-1000)%10 <= 4 && (p-1000)/10 >= off {
				want = (p-1000)/10 - off
			}
			if p == 65535 {
				want = len(list) - 1 - off
			}
			if v := match(s, "h.test", uint16(p)); v.Index != want {
				t.Fatalf("port %d: %d, want %d", p, v.Index, want)
			}
		}
	}
}

type program struct {
	p     *registry.Process
	calls int
}

func (f *program) Wait(ctx context.Context) (*registry.Process, bool) {
	f.calls++
	return f.p, f.p != nil
}

func TestApp(t *testing.T) {
	s := mustCompile(t, []Rule{
		r(KindDomain, "first.test", "direct"),
		r(KindApp, "Curl", "reject"),
		r(KindApp, "/usr/bin/wget", "direct"),
	}, Options{})
	curl := &program{p: &registry.Process{PID: 10, Name: "curl", Path: "/usr/bin/curl"}}
	if v := s.Match(context.Background(), &Query{Host: "x.test", Program: curl}); v.Index != 1 {
		t.Errorf("curl: %+v", v)
	}
	wget := &program{p: &registry.Process{PID: 11, Name: "wget", Path: "/usr/bin/wget"}}
	if v := s.Match(context.Background(), &Query{Host: "x.test", Program: wget}); v.Index != 2 {
		t.Errorf("wget: %+v", v)
	}
	// An earlier rule matches: the program is not even asked.
	other := &program{p: &registry.Process{PID: 12, Name: "curl"}}
	if v := s.Match(context.Background(), &Query{Host: "first.test", Program: other}); v.Index != 0 || other.calls != 0 {
		t.Errorf("first: %+v, waited %d", v, other.calls)
	}
	win := &program{p: &registry.Process{PID: 13, Name: "CURL.EXE", Path: `C:\Tools\curl.exe`}}
	if v := s.Match(context.Background(), &Query{Host: "x.test", Program: win}); v.Index != 1 {
		t.Errorf("curl.exe: %+v", v)
	}
	unknown := &program{p: &registry.Process{Unknown: "remote client"}}
	if v := s.Match(context.Background(), &Query{Host: "x.test", Program: unknown}); v.Index != -1 {
		t.Errorf("unknown: %+v", v)
	}
	if v := s.Match(context.Background(), &Query{Host: "x.test"}); v.Index != -1 {
		t.Errorf("no program: %+v", v)
	}
}

type resolver map[string][]netip.Addr

func (m resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

type countingResolver struct {
	resolver
	asked []string
}

func (c *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	c.asked = append(c.asked, host)
	return c.resolver.LookupNetIP(ctx, network, host)
}

// TestNoLookupUnasked: a name is looked up only when a resolving ip-cidr
// rule could still come first: never for rules without resolve, never
// after an earlier rule matched, never for an IP target.
func TestNoLookupUnasked(t *testing.T) {
	res := &countingResolver{resolver: resolver{"in.test": {netip.MustParseAddr("10.1.1.1")}}}
	s := mustCompile(t, []Rule{
		r(KindDomain, "early.test", "direct"),
		r(KindIPCIDR, "10.0.0.0/8", "reject"), // no resolve
		{Kind: KindIPCIDR, Value: "10.0.0.0/8", Action: "tunnel", Resolve: true},
	}, Options{Resolver: res})
	match(s, "early.test", 443)
	match(s, "10.2.3.4", 443)
	if len(res.asked) != 0 {
		t.Fatalf("looked up %v", res.asked)
	}
	if v := match(s, "in.test", 443); v.Index != 2 || len(res.asked) != 1 {
		t.Errorf("resolving rule: %+v, asked %v", v, res.asked)
	}
	plain := &countingResolver{resolver: resolver{}}
	s = mustCompile(t, []Rule{r(KindIPCIDR, "10.0.0.0/8", "reject")}, Options{Resolver: plain})
	match(s, "in.test", 443)
	if len(plain.asked) != 0 {
		t.Errorf("a rule without resolve looked %v up", plain.asked)
	}
}

func TestResolve(t *testing.T) {
	res := resolver{"intranet.test": {netip.MustParseAddr("192.168.5.5")}, "v6.test": {netip.MustParseAddr("fd00::5")}}
	s := mustCompile(t, []Rule{
		r(KindIPCIDR, "203.0.113.0/24", "reject"), // no resolve: never for names
		{Kind: KindIPCIDR, Value: "192.168.0.0/16", Action: "direct", Resolve: true},
		{Kind: KindIPCIDR, Value: "fd00::/8", Action: "direct", Resolve: true},
	}, Options{Resolver: res})
	if v := match(s, "intranet.test", 80); v.Index != 1 {
		t.Errorf("resolved v4: %+v", v)
	}
	if v := match(s, "v6.test", 80); v.Index != 2 {
		t.Errorf("resolved v6: %+v", v)
	}
	if v := match(s, "nowhere.test", 80); v.Index != -1 {
		t.Errorf("unresolvable: %+v", v)
	}
	res["bad.test"] = []netip.Addr{netip.MustParseAddr("203.0.113.9")}
	if v := match(s, "bad.test", 80); v.Index != -1 {
		t.Errorf("no-resolve rule matched a name: %+v", v)
	}
}

func TestNormalizeErrors(t *testing.T) {
	cases := []struct {
		rule  Rule
		field string
	}{
		{Rule{Kind: "geoip", Value: "CN", Action: "direct"}, "kind"},
		{Rule{Value: "x", Action: "direct"}, "kind"},
		{r(KindDomain, "a..b", "direct"), "value"},
		{r(KindDomain, "a.test", "maybe"), "action"},
		{r(KindDomain, "a.test", ""), "action"},
		{r(KindDomain, "a.test", "tunnel:"), "action"},
		{Rule{Kind: KindDomain, Value: "a.test", Action: "direct", Exit: "x"}, "exit"},
		{Rule{Kind: KindDomain, Value: "a.test", Action: "direct", Resolve: true}, "resolve"},
		{r(KindIPCIDR, "10.0.0.0/33", "direct"), "value"},
		{r(KindPort, "0", "direct"), "value"},
		{r(KindPort, "90-80", "direct"), "value"},
		{r(KindPort, "http", "direct"), "value"},
		{r(KindInbound, "ftp", "direct"), "value"},
		{r(KindMatch, "x", "direct"), "value"},
		{r(KindDomainKeyword, "bü", "direct"), "value"},
		{r(KindApp, "", "direct"), "value"},
	}
	for _, c := range cases {
		_, err := c.rule.Normalize()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want field %s", c.rule, err, c.field)
		}
	}
	// Compile reports them by index and keeps the rest.
	s, err := Compile([]Rule{r(KindDomain, "a.test", "direct"), r("geoip", "CN", "direct"), r(KindMatch, "", "reject")}, Options{})
	var re *RuleError
	if !errors.As(err, &re) || re.Index != 1 || s.Len() != 2 {
		t.Fatalf("compile: %v, %d rules", err, s.Len())
	}
}

// TestCIDRAgainstBruteForce checks the flattened ranges against a linear
// scan of random nested and disjoint prefixes.
func TestCIDRAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var list []Rule
		var prefixes []netip.Prefix
		for range 1 + rng.IntN(60) {
			var p netip.Prefix
			if rng.IntN(3) == 0 {
				var b [16]byte
				b[0], b[1], b[2] = 0x20, 0x01, byte(rng.IntN(4))
				b[3] = byte(rng.IntN(4))
				p = netip.PrefixFrom(netip.AddrFrom16(b), 16+rng.IntN(113)).Masked()
			} else {
				a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, rng.IntN(33)).Masked()
			}
			prefixes = append(prefixes, p)
			list = append(list, r(KindIPCIDR, p.String(), "direct"))
		}
		s := mustCompile(t, list, Options{})
		for range 500 {
			var a netip.Addr
			if rng.IntN(3) == 0 {
				var b [16]byte
				b[0], b[1], b[2], b[3] = 0x20, 0x01, byte(rng.IntN(4)), byte(rng.IntN(4))
				for i := 4; i < 16; i++ {
					b[i] = byte(rng.IntN(256))
				}
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte{byte(10 + rng.IntN(2)*rng.IntN(250)), byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))})
			}
			want := -1
			for i, p := range prefixes {
				if p.Contains(a) {
					want = i
					break
				}
			}
			if v := match(s, a.String(), 1); v.Index != want {
				t.Fatalf("round %d: %v: %d, want %d (%v)", round, a, v.Index, want, prefixes)
			}
		}
	}
}

// TestKeywordsAgainstBruteForce checks Aho-Corasick against strings.Contains.
func TestKeywordsAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alpha = "abc.-"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	for range 100 {
		var list []Rule
		var kws []string
		for range 1 + rng.IntN(20) {
			k := word(1 + rng.IntN(4))
			kws = append(kws, k)
			list = append(list, r(KindDomainKeyword, k, "direct"))
		}
		s := mustCompile(t, list, Options{})
		for range 200 {
			h := "x" + word(rng.IntN(12)) + "x"
			want := -1
			for i, k := range kws {
				if strings.Contains(h, k) {
					want = i
					break
				}
			}
			name := []byte(h)
			got := int(s.keywords.lookup(name))
			if got == int(none) {
				got = -1
			}
			if got != want {
				t.Fatalf("%q in %v: %d, want %d", h, kws, got, want)
			}
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	s := mustCompile(t, mixedRules(2000, 1), Options{})
	queries := []Query{
		{Host: "www.Example-7.com.", Port: 443, Inbound: registry.ProtoConnect},
		{Host: "10.3.4.5", Port: 80, Inbound: registry.ProtoHTTP},
		{Host: "[2001:db8::7]", Port: 8443, Inbound: registry.ProtoSOCKS5},
		{Host: "nothing.matches.here", Port: 5, Inbound: registry.ProtoSOCKS4},
	}
	for _, q := range queries {
		n := testing.AllocsPerRun(200, func() { s.Match(context.Background(), &q) })
		if n != 0 {
			t.Errorf("%+v: %v allocations per match", q, n)
		}
	}
}
