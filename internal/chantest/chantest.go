// Package chantest waits for a value on a channel with a bound, so that a
// test whose goroutine never answers fails, saying what it waited for,
// instead of hanging until the test binary's timeout. Only tests import it.
package chantest

import (
	"testing"
	"time"
)

// Within returns the next value of ch, or fails t (Fatal) if none comes
// within d; what names the awaited value in the failure.
func Within[T any](t testing.TB, d time.Duration, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: nothing within %v", what, d)
		var zero T // for a t whose Fatalf returns
		return zero
	}
}
