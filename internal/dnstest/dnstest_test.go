package dnstest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestResolverAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := Resolver(t, func(q []byte) []byte { return Reply(q, 0, &[4]byte{127, 0, 0, 9}) })
	ips, err := r.LookupIP(ctx, "ip4", "name.example")
	if err != nil || len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 9)) {
		t.Errorf("LookupIP: %v, %v; want [127.0.0.9]", ips, err)
	}

	nx := Resolver(t, func(q []byte) []byte { return Reply(q, RcodeNXDomain, nil) })
	_, err = nx.LookupIP(ctx, "ip4", "nothing.invalid")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("NXDOMAIN lookup: %v, want a not-found DNSError", err)
	}
}

func TestReplyRefusesWhatIsNoQuery(t *testing.T) {
	for _, q := range [][]byte{nil, make([]byte, 11), make([]byte, 12)} {
		if r := Reply(q, 0, nil); r != nil {
			t.Errorf("Reply(%d bytes with no question) = %x, want nil", len(q), r)
		}
	}
}

// A lookup against the silent server ends with its context, and the
// cleanup ends what the resolver still has open.
func TestSilentNeverAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Silent(t).LookupIP(ctx, "ip4", "name.example")
	if err == nil {
		t.Fatal("the silent resolver answered")
	}
}
