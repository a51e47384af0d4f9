package outbound

import "testing"

// The three settings parsed by parseName: every valid name is itself, ""
// is the default where there is one, anything else is refused.
func TestParseNames(t *testing.T) {
	type parsed struct {
		got string
		err error
	}
	kind := func(s string) parsed { k, err := ParseKind(s); return parsed{string(k), err} }
	policy := func(s string) parsed { p, err := ParsePolicy(s); return parsed{string(p), err} }
	mode := func(s string) parsed { m, err := ParseMode(s); return parsed{string(m), err} }
	for _, c := range []struct {
		name  string
		parse func(string) parsed
		in    string
		want  string // "" with an error
	}{
		{"kind", kind, "", "porthole"},
		{"kind", kind, "porthole", "porthole"},
		{"kind", kind, "http", "http"},
		{"kind", kind, "socks5", "socks5"},
		{"kind", kind, "HTTP", ""},
		{"policy", policy, "", "failover"},
		{"policy", policy, "manual", "manual"},
		{"policy", policy, "fastest", "fastest"},
		{"policy", policy, "failover", "failover"},
		{"policy", policy, "random", ""},
		{"mode", mode, "", ""},
		{"mode", mode, "direct", "direct"},
		{"mode", mode, "tunnel", "tunnel"},
		{"mode", mode, "rules", "rules"},
		{"mode", mode, "sideways", ""},
	} {
		p := c.parse(c.in)
		if p.got != c.want || (p.err != nil) != (c.want == "") {
			t.Errorf("%s %q = %q, %v; want %q", c.name, c.in, p.got, p.err, c.want)
		}
	}
}
