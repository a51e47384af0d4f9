package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseClashLine(t *testing.T) {
	cases := []struct {
		line string
		want Rule
	}{
		{"DOMAIN-SUFFIX,example.com,DIRECT", Rule{Kind: KindDomainSuffix, Value: "example.com", Action: ActionDirect}},
		{"DOMAIN-KEYWORD,google,PROXY", Rule{Kind: KindDomainKeyword, Value: "google", Action: ActionTunnel}},
		{"DOMAIN,Ads.Example.com,REJECT", Rule{Kind: KindDomain, Value: "ads.example.com", Action: ActionReject}},
		{"IP-CIDR,10.0.0.0/8,DIRECT", Rule{Kind: KindIPCIDR, Value: "10.0.0.0/8", Action: ActionDirect, Resolve: true}},
		{"IP-CIDR,10.0.0.0/8,DIRECT,no-resolve", Rule{Kind: KindIPCIDR, Value: "10.0.0.0/8", Action: ActionDirect}},
		{"IP-CIDR6,2001:db8::/32,REJECT,no-resolve", Rule{Kind: KindIPCIDR, Value: "2001:db8::/32", Action: ActionReject}},
		{"DST-PORT,8000-8999,DIRECT", Rule{Kind: KindPort, Value: "8000-8999", Action: ActionDirect}},
		{"PROCESS-NAME,curl,REJECT", Rule{Kind: KindApp, Value: "curl", Action: ActionReject}},
		{"RULE-SET,ads,REJECT", Rule{Kind: KindRuleSet, Value: "ads", Action: ActionReject}},
		{"MATCH,🚀 Proxies", Rule{Kind: KindMatch, Action: ActionTunnel}},
		{"IN-TYPE,HTTPS,DIRECT", Rule{Kind: KindInbound, Value: "connect", Action: ActionDirect}},
		{"IN-TYPE,SOCKS5,REJECT", Rule{Kind: KindInbound, Value: "socks5", Action: ActionReject}},
		{" domain-suffix , x.test , direct ", Rule{Kind: KindDomainSuffix, Value: "x.test", Action: ActionDirect}},
	}
	for _, c := range cases {
		got, err := ParseClashLine(c.line)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	bad := map[string]string{
		"GEOIP,CN,DIRECT": "kind",
		"AND,((DOMAIN,a.com),(NETWORK,UDP)),DIRECT": "kind",
		"DOMAIN-SUFFIX,,DIRECT":                     "value",
		"DOMAIN-SUFFIX,a.com":                       "action",
		"IP-CIDR,10.0.0.0/40,DIRECT":                "value",
		"DOMAIN,a.com,DIRECT,no-resolve":            "option",
		"DST-PORT,99999,DIRECT":                     "value",
	}
	for line, field := range bad {
		_, err := ParseClashLine(line)
		var le *LineError
		if !errors.As(err, &le) || le.Field != field {
			t.Errorf("%q: %v, want field %s", line, err, field)
		}
	}
	if _, err := ParseClashLine("GEOIP,CN,DIRECT"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("GEOIP: %v", err)
	}
}

// clashList writes n real-looking Clash lines, a bad one every so often;
// it returns the text and the line numbers of the bad ones.
func clashList(n int) (string, map[int]bool) {
	rng := rand.New(rand.NewPCG(7, 8))
	var b strings.Builder
	bad := map[int]bool{}
	b.WriteString("# generated list\n\n")
	line := 2
	for i := 0; i < n; i++ {
		line++
		switch k := rng.IntN(200); {
		case k == 0:
			b.WriteString("GEOIP,CN,DIRECT\n")
			bad[line] = true
		case k == 1:
			fmt.Fprintf(&b, "DOMAIN-SUFFIX,bad_%d..com,DIRECT\n", i)
			bad[line] = true
		case k == 2:
			fmt.Fprintf(&b, "IP-CIDR,10.%d.0.0/99,REJECT\n", i%256)
			bad[line] = true
		case k == 3:
			b.WriteString("# a comment\n")
		case k < 120:
			fmt.Fprintf(&b, "DOMAIN-SUFFIX,site%d.example,%s\n", i, []string{"DIRECT", "PROXY", "REJECT"}[i%3])
		case k < 150:
			fmt.Fprintf(&b, "DOMAIN,www.host%d.test,PROXY\n", i)
		case k < 165:
			fmt.Fprintf(&b, "DOMAIN-KEYWORD,kw%d,REJECT\n", i)
		case k < 185:
			fmt.Fprintf(&b, "IP-CIDR,%d.%d.0.0/16,DIRECT,no-resolve\n", 1+i%200, i%256)
		case k < 195:
			fmt.Fprintf(&b, "IP-CIDR6,2001:db8:%x::/48,PROXY,no-resolve\n", i)
		default:
			fmt.Fprintf(&b, "DST-PORT,%d,DIRECT\n", 1024+i)
		}
	}
	b.WriteString("MATCH,PROXY\n")
	return b.String(), bad
}

func TestClashImport5000(t *testing.T) {
	text, bad := clashList(5000)
	list, err := ParseClash([]byte(text))
	if len(bad) == 0 {
		t.Fatal("the generator made no bad lines")
	}
	got := map[int]bool{}
	for _, e := range unjoin(err) {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("not a line error: %v", e)
		}
		got[le.Line] = true
	}
	for l := range bad {
		if !got[l] {
			t.Errorf("bad line %d not reported", l)
		}
	}
	for l := range got {
		if !bad[l] {
			t.Errorf("good line %d reported", l)
		}
	}
	lines := strings.Count(text, "\n")
	if len(list) == 0 || len(list) >= lines {
		t.Fatalf("%d rules from %d lines", len(list), lines)
	}
	s, err := Compile(list, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := match(s, "a.site3.example", 443); v.Index < 0 || v.Rule.Payload != "site3.example" {
		t.Errorf("site3: %+v", v)
	}
	if last := s.Rules()[s.Len()-1]; last.Kind != KindMatch {
		t.Errorf("last rule %+v", last)
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestProviderFormats(t *testing.T) {
	yamlDomains := "payload:\n  - '+.ads.example'\n  - 'exact.example'\n  - '.sub.example'\n  - 'bad..name'\n"
	p, err := ParseProvider([]byte(yamlDomains), "domain")
	var le *LineError
	if !errors.As(err, &le) || le.Line != 5 || len(p) != 3 {
		t.Fatalf("yaml domains: %v, %+v", err, p)
	}
	if p[0].Kind != KindDomainSuffix || p[1].Kind != KindDomain || p[2].Kind != KindDomainSuffix {
		t.Errorf("kinds: %+v", p)
	}
	cidr, err := ParseProvider([]byte("# v4 and v6\n10.0.0.0/8\n2001:db8::/32\n"), "")
	if err != nil || len(cidr) != 2 || cidr[1].Kind != KindIPCIDR {
		t.Fatalf("text cidrs: %v %+v", err, cidr)
	}
	classical, err := ParseProvider([]byte("payload:\n  - DOMAIN-SUFFIX,c.example\n  - IP-CIDR,192.0.2.0/24,no-resolve\n  - GEOIP,CN\n"), "classical")
	if !errors.As(err, &le) || le.Line != 4 || !errors.Is(err, ErrUnknownKind) || len(classical) != 2 {
		t.Fatalf("classical: %v %+v", err, classical)
	}
}

func TestLoadFileWithProviders(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ads.yaml", "payload:\n  - '+.ads.example'\n")
	write("lan.txt", "192.168.0.0/16\n")
	rulesFile := write("rules.list", "RULE-SET,ads,REJECT\nRULE-SET,lan,DIRECT\nDOMAIN,x.test,DIRECT\nMATCH,PROXY\n")
	src, err := LoadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Files) != 3 {
		t.Errorf("files %v", src.Files)
	}
	s, err := Compile(src.Rules, Options{Providers: src.Providers})
	if err != nil {
		t.Fatal(err)
	}
	if v := match(s, "t.ads.example", 443); v.Index != 0 || v.Action != ActionReject || v.Rule.String() != "#1 rule-set ads → reject" {
		t.Errorf("ads: %+v %q", v, v.Rule.String())
	}
	if v := match(s, "192.168.1.1", 443); v.Index != 1 {
		t.Errorf("lan: %+v", v)
	}
	if v := match(s, "other.test", 443); v.Index != 3 {
		t.Errorf("match: %+v", v)
	}

	// A Clash config's sections.
	cfg := write("clash.yaml", "mixed-port: 7890\nrule-providers:\n  blocked:\n    type: file\n    behavior: domain\n    path: ./ads.yaml\nrules:\n  - RULE-SET,blocked,REJECT\n  - GEOIP,CN,DIRECT\n  - MATCH,DIRECT\n")
	src, err = LoadFile(cfg)
	if !errors.As(err, new(*LineError)) || !errors.Is(err, ErrUnknownKind) || len(src.Rules) != 2 {
		t.Fatalf("clash config: %v %+v", err, src)
	}
	var le *LineError
	if errors.As(err, &le); le.Line != 9 {
		t.Errorf("GEOIP reported on line %d", le.Line)
	}
	if s, err = Compile(src.Rules, Options{Providers: src.Providers}); err != nil || match(s, "a.ads.example", 1).Action != ActionReject {
		t.Errorf("clash config compiled: %v", err)
	}

	// JSON with a path, and a missing provider.
	js := write("rules.json", `[{"kind":"rule-set","value":"mine","path":"lan.txt","action":"direct"},{"kind":"rule-set","value":"gone","action":"reject"}]`)
	src, err = LoadFile(js)
	if !errors.Is(err, errNoProvider) {
		t.Errorf("missing provider: %v", err)
	}
	if _, ok := src.Providers["mine"]; !ok {
		t.Errorf("providers %v", src.Providers)
	}

	// A provider alone is named after its file.
	src, err = LoadFile(filepath.Join(dir, "ads.yaml"))
	if err != nil || len(src.Providers["ads"]) != 1 || len(src.Rules) != 0 {
		t.Errorf("provider alone: %v %+v", err, src)
	}
}

func TestParseJSON(t *testing.T) {
	list, err := ParseJSON([]byte(`[{"kind":"DOMAIN-suffix","value":"Example.COM","action":"tunnel:Home"},{"kind":"match","action":"direct"}]`))
	if err != nil || list[0].Value != "example.com" || list[0].Exit != "Home" || list[0].Action != ActionTunnel {
		t.Fatalf("%v %+v", err, list)
	}
	if _, err := ParseJSON([]byte(`[{"kind":"domain","value":"a.test","action":"direct","typo":1}]`)); err == nil {
		t.Error("unknown field accepted")
	}
	var le *LineError
	if _, err := ParseJSON([]byte("[\n{\"kind\": \"domain\", \"value\": \"a.test\", \"action\": \"direct\"},\n{\"kind\": \"port\", \"value\": 443}\n]")); !errors.As(err, &le) || le.Line != 3 {
		t.Errorf("wrong type: %v", err)
	}
	if _, err := ParseJSON([]byte("[\n{\"kind\": \"domain\",\n\"value\" \"a.test\"}]")); !errors.As(err, &le) || le.Line != 3 {
		t.Errorf("syntax: %v", err)
	}
	_, err = ParseJSON([]byte(`{"rules":[{"kind":"domain","value":"a.test","action":"direct"},{"kind":"bogus","action":"direct"}]}`))
	var re *RuleError
	if !errors.As(err, &re) || re.Index != 1 {
		t.Errorf("bad rule: %v", err)
	}
}
