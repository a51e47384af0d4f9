package sysproxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"porthole/core/outbound"
)

// Checking what Enable is given, before anything is touched.

// splitAddr checks host:port and turns an unspecified or empty host into
// the loopback address a local program can reach.
func splitAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: proxy address %q: %w", ErrInvalid, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%w: proxy address %q: port %q is not a number from 1 to 65535", ErrInvalid, addr, p)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.IsUnspecified() {
			h = "127.0.0.1"
		} else {
			h = a.String()
		}
	} else if h == "" {
		h = "127.0.0.1"
	} else if !outbound.ValidHostname(strings.TrimSuffix(h, ".")) {
		return "", 0, fmt.Errorf("%w: proxy address %q: %q is not a host name or IP address", ErrInvalid, addr, h)
	}
	return h, port, nil
}

// cleanBypass validates entries with outbound.ParseBypass (the error names
// the bad entry) and returns them trimmed, lower-cased, IP literals without
// brackets, empties and duplicates dropped.
func cleanBypass(entries []string) ([]string, error) {
	if _, err := outbound.ParseBypass(entries); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	out := make([]string, 0, len(entries))
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSpace(raw))
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			e = a.String()
		} else if !strings.Contains(e, "/") {
			e = strings.TrimSuffix(e, ".")
		}
		if e == "" || slices.Contains(out, e) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// withoutLocal is a bypass list for GLib's ignore-hosts and KDE's
// NoProxyFor: both match names, suffixes, addresses and CIDRs as
// cleanBypass leaves them, and neither has an equivalent of <local>, which
// is dropped.
func withoutLocal(bypass []string) []string {
	out := make([]string, 0, len(bypass))
	for _, e := range bypass {
		if e != "<local>" {
			out = append(out, e)
		}
	}
	return out
}
