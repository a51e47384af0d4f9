package outbound

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultBypass is the list of hosts that never go through the tunnel and
// that the system proxy leaves alone.
var DefaultBypass = []string{
	"localhost", "127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "*.local",
}

// Bypass matches target hosts against a list of entries:
//   - "example.com": that host exactly;
//   - "*.example.com" or ".example.com": any subdomain of example.com and
//     example.com itself;
//   - "10.0.0.0/8", "fd00::/8": a CIDR, matched against IP literals;
//   - "192.0.2.1", "::1": one address;
//   - "<local>": plain host names without a dot (as Windows means it).
//
// Names are matched case-insensitively and without a trailing dot; a name is
// never resolved to match a CIDR (that would leak the lookup).
// A Bypass is immutable and safe for concurrent use.
type Bypass struct {
	hosts    map[string]bool
	suffixes []string // with the leading dot
	prefixes []netip.Prefix
	local    bool
}

// ParseBypass parses entries; an entry that is not a host, suffix or CIDR is
// an error naming it.
func ParseBypass(entries []string) (*Bypass, error) {
	b := &Bypass{hosts: make(map[string]bool)}
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSpace(raw))
		switch {
		case e == "":
			continue
		case e == "<local>":
			b.local = true
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("bypass entry %q is not a valid CIDR: %w", raw, err)
			}
			b.prefixes = append(b.prefixes, p.Masked())
		case isIPLiteral(e):
			a, _ := netip.ParseAddr(strings.Trim(e, "[]")) // isIPLiteral just parsed it
			b.prefixes = append(b.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		default:
			name, suffix := strings.CutPrefix(e, "*.")
			if !suffix {
				name, suffix = strings.CutPrefix(e, ".")
			}
			name = strings.TrimSuffix(name, ".")
			if !ValidHostname(name) {
				return nil, fmt.Errorf("bypass entry %q is not a host name, *.suffix or CIDR", raw)
			}
			if suffix {
				b.suffixes = append(b.suffixes, "."+name)
			}
			b.hosts[name] = true
		}
	}
	return b, nil
}

func isIPLiteral(s string) bool {
	_, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return err == nil
}

// Match reports whether host (a name or an IP literal, no port) is bypassed.
func (b *Bypass) Match(host string) bool {
	if b == nil {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, p := range b.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if b.hosts[host] {
		return true
	}
	for _, s := range b.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return b.local && !strings.Contains(host, ".")
}

// ValidHostname reports whether s is a syntactically valid DNS name (letters,
// digits, '-' and '_' in labels of 1 to 63 bytes, 253 bytes in all).
func ValidHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// SplitTarget checks a host:port the way a client may send it and returns
// host (brackets removed) and port. The host is an IP literal or a valid
// name; the port is 1 to 65535.
func SplitTarget(target string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(target)
	if err != nil {
		return "", 0, fmt.Errorf("bad target %q: %w", target, err)
	}
	if !isIPLiteral(h) && !ValidHostname(strings.TrimSuffix(h, ".")) {
		return "", 0, fmt.Errorf("bad target %q: %q is not a host name or IP address", target, h)
	}
	n, err := parsePort(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad target %q: %w", target, err)
	}
	return h, n, nil
}

func parsePort(p string) (uint16, error) {
	if p == "" || len(p) > 5 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		n = n*10 + int(p[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return uint16(n), nil
}
