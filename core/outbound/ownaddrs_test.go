package outbound

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fakeWatch reports a change once per set.
type fakeWatch struct{ pending bool }

func (w *fakeWatch) changed() bool {
	was := w.pending
	w.pending = false
	return was
}

// withInterfaceAddrs makes the cache read addrs (counting the reads).
func withInterfaceAddrs(t *testing.T, addrs *[]netip.Addr) *int {
	t.Helper()
	reads := new(int)
	orig := interfaceAddrs
	interfaceAddrs = func() ([]netip.Addr, error) {
		*reads++
		return slices.Clone(*addrs), nil
	}
	t.Cleanup(func() { interfaceAddrs = orig })
	return reads
}

// Without a watch the list is kept for ownTTL, then read again.
func TestOwnCacheTTL(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	reads := withInterfaceAddrs(t, &addrs)
	c := &ownCache{}
	for range 3 {
		got, err := c.get()
		if err != nil || !slices.Equal(got, addrs) {
			t.Fatalf("get = %v, %v", got, err)
		}
	}
	if *reads != 1 {
		t.Fatalf("%d reads for 3 gets within the TTL, want 1", *reads)
	}
	addrs = append(addrs, netip.MustParseAddr("203.0.113.8"))
	c.read = c.read.Add(-ownTTL) // as if ownTTL had passed
	got, err := c.get()
	if err != nil || !slices.Equal(got, addrs) || *reads != 2 {
		t.Fatalf("after the TTL: %v, %v, %d reads; want %v, 2 reads", got, err, *reads, addrs)
	}
}

// With a watch the list is read again at a change, and only then (or
// after the long TTL).
func TestOwnCacheWatched(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	reads := withInterfaceAddrs(t, &addrs)
	w := &fakeWatch{}
	c := &ownCache{open: func() (addrWatch, error) { return w, nil }}
	for range 3 {
		if _, err := c.get(); err != nil {
			t.Fatal(err)
		}
	}
	c.read = c.read.Add(-ownTTL) // the short TTL does not apply
	if _, err := c.get(); err != nil || *reads != 1 {
		t.Fatalf("%d reads without a change, want 1 (%v)", *reads, err)
	}
	addrs = append(addrs, netip.MustParseAddr("2001:db8::7"))
	w.pending = true
	got, err := c.get()
	if err != nil || !slices.Equal(got, addrs) || *reads != 2 {
		t.Fatalf("after a change: %v, %v, %d reads; want %v, 2 reads", got, err, *reads, addrs)
	}
	c.read = time.Now().Add(-ownWatchedTTL)
	if _, err := c.get(); err != nil || *reads != 3 {
		t.Fatalf("after the long TTL: %d reads, want 3 (%v)", *reads, err)
	}
}

// The guard asks for the machine's addresses only when a target passes
// the fixed checks: a loopback or private target costs no listing.
func TestGuardListsOwnOnlyForPublic(t *testing.T) {
	asked := 0
	g := &Guarded{Own: func() ([]netip.Addr, error) {
		asked++
		return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
	}}
	if _, err := g.DialContext(t.Context(), "tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("a loopback target got through")
	}
	if asked != 0 {
		t.Fatalf("own addresses listed %d times for a loopback target", asked)
	}
	if _, err := g.DialContext(t.Context(), "tcp", "203.0.113.7:9"); err == nil {
		t.Fatal("the machine's own address got through")
	}
	if asked != 1 {
		t.Fatalf("own addresses listed %d times for a public target, want 1", asked)
	}
}

// BenchmarkOwnAddrs: what the guard paid per stream for the machine's
// addresses ("list": reading them, as it did on every dial) and what it
// pays now ("cached": the kept list, with the watch's check).
func BenchmarkOwnAddrs(b *testing.B) {
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if _, err := interfaceAddrs(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := &ownCache{open: openAddrWatch}
		for b.Loop() {
			if _, err := c.get(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
