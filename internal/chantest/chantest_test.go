package chantest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A value already sent is returned, and a closed channel's zero.
func TestWithinReturnsTheValue(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Within(t, time.Minute, "seven", ch); got != 7 {
		t.Errorf("Within = %d, want 7", got)
	}
	close(ch)
	if got := Within(t, time.Minute, "the close", ch); got != 0 {
		t.Errorf("Within of a closed channel = %d, want 0", got)
	}
}

// fatalT records the message of a Fatalf, and returns.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

// Nothing sent: the test fails, naming what it waited for and how long.
func TestWithinFailsWhenNothingComes(t *testing.T) {
	ft := &fatalT{TB: t}
	if err := Within(ft, time.Millisecond, "the answer", make(chan error)); err != nil {
		t.Errorf("Within after its Fatalf returned %v, want the zero value", err)
	}
	if !strings.Contains(ft.msg, "the answer") || !strings.Contains(ft.msg, "1ms") {
		t.Errorf("failure %q, want it to name the answer and the 1ms", ft.msg)
	}
}
