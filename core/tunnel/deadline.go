package tunnel

import (
	"sync"
	"time"
)

// deadline is a settable deadline whose expiry is a closed channel, so
// waiters can select on it together with other events (as net.Pipe does).
// The zero value has no deadline and no channel (nil: a select never picks
// it), so an idle stream holds none; the stream wakes its waiters on every
// change, and they fetch the channel again.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes; nil while none was set
}

// expired is the channel of a deadline set in the past before any other.
var expired = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// set arms the deadline at t; the zero time disarms it. Safe from any
// goroutine; waiters pick up the new channel on their next wait.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: its close is done or about to be
	}
	d.timer = nil
	closed := d.cancel != nil && isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = nil
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if d.cancel == nil || closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	switch {
	case d.cancel == nil:
		d.cancel = expired
	case !closed:
		close(d.cancel)
	}
}

// wait returns the channel closed at expiry.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
