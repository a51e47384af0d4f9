package outbound

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// PAC returns a proxy auto-config script that sends bypassed hosts direct
// and everything else to proxy (host:port), falling back to a direct
// connection if the proxy is down, so a browser never loses the internet
// because Porthole is not running. It never makes the browser resolve a
// name just to test a CIDR.
func (b *Bypass) PAC(proxy string) string {
	var conds []string
	if b != nil {
		for h := range b.hosts {
			conds = append(conds, "host == "+strconv.Quote(h))
		}
		for _, s := range b.suffixes {
			conds = append(conds, "dnsDomainIs(host, "+strconv.Quote(s)+")")
		}
		for _, p := range b.prefixes {
			if p.Addr().Is4() {
				conds = append(conds, fmt.Sprintf("(isIPv4 && isInNet(host, %q, %q))", p.Addr(), maskOf(p)))
			} else if p.IsSingleIP() {
				conds = append(conds, "host == "+strconv.Quote(p.Addr().String())+" || host == "+strconv.Quote("["+p.Addr().String()+"]"))
			}
		}
		if b.local {
			conds = append(conds, "isPlainHostName(host)")
		}
	}
	cond := "false"
	if len(conds) > 0 {
		slices.Sort(conds)
		cond = strings.Join(conds, " ||\n      ")
	}
	return fmt.Sprintf(`function FindProxyForURL(url, host) {
  host = host.toLowerCase();
  var isIPv4 = /^\d+\.\d+\.\d+\.\d+$/.test(host);
  if (%s)
    return "DIRECT";
  return "PROXY %s; DIRECT";
}
`, cond, proxy)
}

func maskOf(p netip.Prefix) string {
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(m).String()
}
