package sysproxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The Windows backend (wininet_windows.go) sets WinINet's per-connection
// options of the LAN connection and of every dial-up/VPN (RAS) entry. This
// file holds what does not need Windows: key names, the option strings, the
// flags, so that they are tested everywhere.
//
// Keys are "CONN/OPTION": CONN is "lan" or "ras:ENTRY NAME", OPTION is
// flags (decimal PROXY_TYPE_* bits), server (INTERNET_PER_CONN_PROXY_SERVER)
// or bypass (INTERNET_PER_CONN_PROXY_BYPASS).

const (
	winLAN       = "lan"
	winRASPrefix = "ras:"

	winOptFlags  = "flags"
	winOptServer = "server"
	winOptBypass = "bypass"

	winProxyTypeDirect = 0x1 // PROXY_TYPE_DIRECT
	winProxyTypeProxy  = 0x2 // PROXY_TYPE_PROXY
)

// winKey names option opt of the connection called conn ("" is the LAN).
func winKey(conn, opt string) string {
	if conn == "" {
		return winLAN + "/" + opt
	}
	return winRASPrefix + conn + "/" + opt
}

// parseWinKey splits a key into the connection name ("" for the LAN) and
// the option.
func parseWinKey(k string) (conn, opt string, err error) {
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return "", "", fmt.Errorf("WinINet: %q is not a CONN/OPTION key", k)
	}
	c, opt := k[:i], k[i+1:]
	switch opt {
	case winOptFlags, winOptServer, winOptBypass:
	default:
		return "", "", fmt.Errorf("WinINet: %q has an unknown option %q", k, opt)
	}
	if c == winLAN {
		return "", opt, nil
	}
	if name, ok := strings.CutPrefix(c, winRASPrefix); ok && name != "" {
		return name, opt, nil
	}
	return "", "", fmt.Errorf("WinINet: %q names no connection (lan or ras:NAME)", k)
}

// winWanted is what Porthole sets on each connection ("" is the LAN).
func winWanted(conns []string, host string, port int, bypass []string) map[string]string {
	out := make(map[string]string, 3*len(conns))
	for _, c := range conns {
		out[winKey(c, winOptFlags)] = strconv.Itoa(winProxyTypeDirect | winProxyTypeProxy)
		out[winKey(c, winOptServer)] = winServer(host, port)
		out[winKey(c, winOptBypass)] = winBypass(bypass)
	}
	return out
}

// winServer is the proxy server option: Porthole's port for HTTP and HTTPS.
// Not socks=: WinINet speaks SOCKS4 there, and not a bare host:port, which
// would send FTP to an HTTP proxy too.
func winServer(host string, port int) string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	return "http=" + hp + ";https=" + hp
}

// winBypass is the bypass option: WinINet wants ';'-separated host
// patterns with '*' wildcards and knows no CIDR, so IPv4 prefixes become
// octet wildcards (10.0.0.0/8 → 10.*; 172.16.0.0/12 → 172.16.* … 172.31.*),
// ".example.com" becomes "*.example.com", IPv6 prefixes other than one
// address are dropped, and <local> (plain names without a dot) is always
// added.
func winBypass(bypass []string) string {
	var out []string
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, e := range bypass {
		switch {
		case e == "<local>":
		case strings.Contains(e, "/"):
			for _, w := range winPrefixPatterns(e) {
				add(w)
			}
		case strings.HasPrefix(e, "."):
			add("*" + e)
		default:
			add(e)
		}
	}
	add("<local>")
	return strings.Join(out, ";")
}

// winPrefixPatterns turns a CIDR into WinINet wildcard patterns, widening
// the prefix to the next whole octet (at most 128 patterns).
func winPrefixPatterns(cidr string) []string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil
	}
	p = p.Masked()
	a := p.Addr()
	if !a.Is4() {
		if p.IsSingleIP() {
			return []string{a.String()}
		}
		return nil
	}
	bits := p.Bits()
	if bits == 32 {
		return []string{a.String()}
	}
	if bits == 0 {
		return []string{"*"}
	}
	whole := (bits + 7) / 8 // octets written out
	count := 1 << (whole*8 - bits)
	b := a.As4()
	out := make([]string, 0, count)
	for i := 0; i < count; i++ {
		o := b
		o[whole-1] += byte(i)
		parts := make([]string, whole)
		for j := 0; j < whole; j++ {
			parts[j] = strconv.Itoa(int(o[j]))
		}
		if whole < 4 {
			parts = append(parts, "*")
		}
		out = append(out, strings.Join(parts, "."))
	}
	return out
}
