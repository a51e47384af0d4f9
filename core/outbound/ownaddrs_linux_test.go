package outbound

import (
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"porthole/internal/childproc"
)

// An address added to an interface is in the next list, long before the
// TTL: the netlink watch saw the change. The test runs in a network
// namespace of its own (on one OS thread, which ends with it), so the
// machine's addresses are not touched; it needs root and ip(8).
func TestOwnCacheSeesNewAddress(t *testing.T) {
	ip := childproc.Need(t, "ip", "ip(8) adds the address")
	added := netip.MustParseAddr("198.51.100.77")
	type result struct {
		before, after []netip.Addr
		skip          string
		err           error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in its own namespace, ends with
		// this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		var r result
		defer func() { done <- r }()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			r.skip = "no network namespace: " + err.Error()
			return
		}
		c := &ownCache{open: openAddrWatch}
		if r.before, r.err = c.get(); r.err != nil {
			return
		}
		if c.watch == nil {
			r.skip = "no netlink address watch"
			return
		}
		// A child started from this thread shares its namespace.
		if out, err := exec.Command(ip, "addr", "add", added.String()+"/32", "dev", "lo").CombinedOutput(); err != nil {
			r.skip = "ip addr add: " + err.Error() + ": " + string(out)
			return
		}
		r.after, r.err = c.get()
	}()
	r := <-done
	switch {
	case r.skip != "":
		t.Skip(r.skip)
	case r.err != nil:
		t.Fatal(r.err)
	case slices.Contains(r.before, added):
		t.Fatalf("%v listed before it was added: %v", added, r.before)
	case !slices.Contains(r.after, added):
		t.Fatalf("%v not listed after it was added: %v", added, r.after)
	}
}
