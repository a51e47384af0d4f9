package rules

import (
	"context"
	"testing"
)

// FuzzClashLine: any line parses or fails cleanly, and what parses
// compiles and matches.
func FuzzClashLine(f *testing.F) {
	for _, s := range []string{"DOMAIN-SUFFIX,example.com,DIRECT", "IP-CIDR,10.0.0.0/8,REJECT,no-resolve",
		"IP-CIDR6,::1/128,PROXY", "DST-PORT,80-90,DIRECT", "MATCH,PROXY", "DOMAIN-KEYWORD,a,REJECT", "GEOIP,CN,DIRECT", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseClashLine(line)
		if err != nil || r.Kind == KindRuleSet {
			return
		}
		s, err := Compile([]Rule{r}, Options{Resolver: resolver{}})
		if err != nil {
			t.Fatalf("%q parsed to %+v but does not compile: %v", line, r, err)
		}
		s.Match(context.Background(), &Query{Host: r.Value, Port: 80})
	})
}

// FuzzRuleJSON: any JSON is read or refused, and what is read compiles
// and matches the rules' own values.
func FuzzRuleJSON(f *testing.F) {
	for _, s := range []string{`[{"kind":"domain","value":"a.test","action":"direct"}]`,
		`{"rules":[{"kind":"ip-cidr","value":"fd00::/8","action":"tunnel:x","resolve":true}]}`,
		`[{"kind":"port","value":"1-65535","action":"reject"},{"kind":"match","action":"direct"}]`, `[]`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		list, err := ParseJSON([]byte(data))
		if err != nil {
			return
		}
		s, err := Compile(list, Options{Resolver: resolver{}, Providers: map[string][]Rule{}})
		if err != nil {
			for _, r := range list {
				if r.Kind != KindRuleSet {
					t.Fatalf("%s: normalised rules do not compile: %v", data, err)
				}
			}
			return
		}
		for _, r := range list {
			s.Match(context.Background(), &Query{Host: r.Value, Port: 443})
		}
	})
}
