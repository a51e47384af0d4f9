package main

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestExtraProxyGroupIsKilled: the extra proxy's command runs in its own
// process group, startExtra waits for its proxy address, and Stop ends
// every process of the group, also those the shell left in the
// background. (A listener of the test stands in for the proxy.)
func TestExtraProxyGroupIsKilled(t *testing.T) {
	ln := loopbackListener(t)
	t.Setenv("BENCH_EXTRA_NAME", "test-extra")
	t.Setenv("BENCH_EXTRA_CMD", "sleep 60 & sleep 60 & wait")
	t.Setenv("BENCH_EXTRA_PROXY", "http://"+ln.Addr().String())
	x, err := startExtra()
	if err != nil {
		t.Fatal(err)
	}
	if x.name != "test-extra" || x.addr != ln.Addr().String() {
		t.Fatalf("name %q addr %q", x.name, x.addr)
	}
	pgid := x.cmd.Process.Pid
	x.Stop()
	x.Stop() // a second Stop does nothing
	// The killed sleeps are reparented and reaped by init; until then
	// they are zombies, which still count as the group's members.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still there: %v", pgid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExtraProxyNeedsAnHTTPURL(t *testing.T) {
	t.Setenv("BENCH_EXTRA_CMD", "true")
	t.Setenv("BENCH_EXTRA_PROXY", "socks5://127.0.0.1:1080")
	if _, err := startExtra(); err == nil {
		t.Fatal("socks5 URL accepted")
	}
	t.Setenv("BENCH_EXTRA_CMD", "")
	if x, err := startExtra(); x != nil || err != nil {
		t.Fatalf("unset: %v, %v", x, err)
	}
}
