package ui

import (
	"errors"
	"testing"

	"github.com/rs/xid"

	"porthole/core/registry"
)

func TestFilterTerms(t *testing.T) {
	id := xid.New()
	row := newConnRow(registry.Info{
		Meta:  registry.Meta{ID: id, Proto: registry.ProtoSOCKS5, Target: "Media.Example.COM:8443", Route: registry.RouteTunnel},
		State: registry.StateClosed, Err: errors.New("tunnel: stream RESET by exit"),
	})
	for text, want := range map[string]bool{
		"":                      true,
		"media":                 true,
		"EXAMPLE.com:8443":      true,
		"reset":                 true,
		id.String()[14:]:        true,
		"route:tunnel":          true,
		"route:tun":             true,
		"route:direct":          false,
		"state:closed":          true,
		"state:open":            false,
		"proto:socks5":          true,
		"protocol:socks":        true,
		"port:8443":             true,
		"port:844":              false,
		"host:example":          true,
		"host:8443":             false,
		"error:stream":          true,
		"err:refused":           false,
		"-state:open":           true,
		"-media":                false,
		"media proto:http":      false,
		"unknown:key":           false, // a plain word
		"route:":                false, // no value: a plain word
		"media   route:tunnel ": true,
	} {
		if got := parseFilter(text).match(row); got != want {
			t.Errorf("filter %q: match %v, want %v", text, got, want)
		}
	}
}
