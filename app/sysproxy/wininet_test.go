package sysproxy

import (
	"slices"
	"strings"
	"testing"

	"porthole/core/outbound"
)

func TestWinKeys(t *testing.T) {
	for _, c := range []struct{ conn, opt, key string }{
		{"", winOptFlags, "lan/flags"},
		{"Office VPN", winOptServer, "ras:Office VPN/server"},
		{"a/b VPN", winOptBypass, "ras:a/b VPN/bypass"},
	} {
		k := winKey(c.conn, c.opt)
		if k != c.key {
			t.Errorf("winKey(%q, %q) = %q, want %q", c.conn, c.opt, k, c.key)
		}
		conn, opt, err := parseWinKey(k)
		if err != nil || conn != c.conn || opt != c.opt {
			t.Errorf("parseWinKey(%q) = %q, %q, %v", k, conn, opt, err)
		}
	}
	for _, bad := range []string{"lan", "lan/proxy", "wan/flags", "ras:/flags", "/flags"} {
		if _, _, err := parseWinKey(bad); err == nil {
			t.Errorf("parseWinKey(%q) accepted", bad)
		}
	}
}

func TestWinWanted(t *testing.T) {
	w := winWanted([]string{"", "Office VPN"}, "127.0.0.1", 8088, outbound.DefaultBypass)
	if len(w) != 6 {
		t.Fatalf("%v", w)
	}
	if w["lan/flags"] != "3" || w["ras:Office VPN/flags"] != "3" {
		t.Errorf("flags: %v", w)
	}
	if w["lan/server"] != "http=127.0.0.1:8088;https=127.0.0.1:8088" {
		t.Errorf("server %q", w["lan/server"])
	}
	if strings.Contains(w["lan/server"], "socks") {
		t.Error("socks= means SOCKS4 to WinINet")
	}
	want := "localhost;127.*;::1;10.*;" +
		"172.16.*;172.17.*;172.18.*;172.19.*;172.20.*;172.21.*;172.22.*;172.23.*;" +
		"172.24.*;172.25.*;172.26.*;172.27.*;172.28.*;172.29.*;172.30.*;172.31.*;" +
		"192.168.*;*.local;<local>"
	if w["lan/bypass"] != want {
		t.Errorf("bypass\n got %q\nwant %q", w["lan/bypass"], want)
	}
	if got := winServer("::1", 8088); got != "http=[::1]:8088;https=[::1]:8088" {
		t.Errorf("IPv6 server %q", got)
	}
}

func TestWinBypass(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, "<local>"},
		{[]string{"<local>", "example.com"}, "example.com;<local>"},
		{[]string{".corp.example", "*.corp.example"}, "*.corp.example;<local>"},
		{[]string{"192.0.2.7", "192.0.2.0/24", "192.0.2.9/32"}, "192.0.2.7;192.0.2.*;192.0.2.9;<local>"},
		{[]string{"fd00::/8", "::1/128"}, "::1;<local>"},
		{[]string{"0.0.0.0/0"}, "*;<local>"},
	} {
		if got := winBypass(c.in); got != c.want {
			t.Errorf("winBypass(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := winPrefixPatterns("10.128.0.0/9"); len(got) != 128 || got[0] != "10.128.*" || got[127] != "10.255.*" {
		t.Errorf("/9: %d patterns, %q … %q", len(got), got[0], got[len(got)-1])
	}
	if got := winPrefixPatterns("192.168.1.128/25"); len(got) != 128 || got[0] != "192.168.1.128" || got[127] != "192.168.1.255" {
		t.Errorf("/25: %d patterns, %q … %q", len(got), got[0], got[len(got)-1])
	}
	if got := winPrefixPatterns("128.0.0.0/1"); len(got) != 128 || got[127] != "255.*" {
		t.Errorf("/1: %q", got[len(got)-1])
	}
	if got := winPrefixPatterns("junk"); got != nil {
		t.Errorf("junk: %q", got)
	}
	if !slices.Contains(strings.Split(winBypass([]string{"172.16.0.0/12"}), ";"), "172.31.*") {
		t.Error("172.16.0.0/12 does not cover 172.31")
	}
}
