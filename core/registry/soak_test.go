package registry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/internal/chantest"
)

// TestSoak: 8 goroutines × 2,000 cycles of register, establish, count,
// abort (by id from another goroutine, by the record, by CloseAll) and
// finish (once, twice, concurrently), with a subscriber reading. Every
// connection has exactly one Opened and one Closed, with its final counts and
// a reason consistent with whether its hook ran.
func TestSoak(t *testing.T) {
	workers, cycles := 8, 2000
	if testing.Short() {
		cycles = 200
	}
	r := newRegistry(t, Options{StatsInterval: time.Millisecond, History: 100, SubscriberMax: 1 << 22})
	snap, sub := r.Subscribe()
	ownerErr := errors.New("owner failed")
	abortErr := errors.New("owner aborted")

	type record struct {
		hooks    atomic.Int32
		up, down int64
	}
	var mu sync.Mutex
	records := make(map[xid.ID]*record, workers*cycles)

	// The subscriber: reads everything until told where to stop.
	type tally struct{ opened, established, closed int }
	type result struct {
		byID   map[xid.ID]*tally
		closed map[xid.ID]Info
		err    error
	}
	stopAt := make(chan uint64, 1)
	res := make(chan result, 1)
	go func() {
		out := result{byID: map[xid.ID]*tally{}, closed: map[xid.ID]Info{}}
		seq, target := snap.Seq, uint64(0)
		deadline := time.After(5 * waitLimit)
		for target == 0 || seq < target {
			select {
			case batch, ok := <-sub.C:
				if !ok {
					out.err = fmt.Errorf("subscription ended: %v", sub.Err())
					res <- out
					return
				}
				for _, ev := range batch {
					if ev.Seq != seq+1 {
						out.err = fmt.Errorf("seq %d after %d", ev.Seq, seq)
						res <- out
						return
					}
					seq = ev.Seq
					if ev.Kind == KindStats {
						continue
					}
					tl := out.byID[ev.Conn.ID]
					if tl == nil {
						tl = &tally{}
						out.byID[ev.Conn.ID] = tl
					}
					switch ev.Kind {
					case KindOpened:
						tl.opened++
					case KindEstablished:
						tl.established++
					case KindClosed:
						tl.closed++
						out.closed[ev.Conn.ID] = ev.Conn
					}
				}
			case target = <-stopAt:
			case <-deadline:
				out.err = fmt.Errorf("reader stuck at seq %d, target %d", seq, target)
				res <- out
				return
			}
		}
		res <- out
	}()

	// The closer: CloseConn from a goroutine other than the owner.
	toClose := make(chan xid.ID, 64)
	closerDone := make(chan struct{})
	go func() {
		defer close(closerDone)
		for id := range toClose {
			r.CloseConn(id)
		}
	}()

	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range cycles {
				rec := &record{}
				called := make(chan struct{}, 1)
				c, finish := r.Register(testMeta, func(error) {
					rec.hooks.Add(1)
					select {
					case called <- struct{}{}:
					default:
					}
				})
				mu.Lock()
				records[c.ID()] = rec
				mu.Unlock()
				op := (w + i) % 6
				if op != 0 { // op 0: finished during the dial
					c.Established("192.0.2.1:443")
				}
				c.AddUp(int64(i))
				c.AddDown(int64(w))
				rec.up, rec.down = int64(i), int64(w)
				switch op {
				case 0:
					finish(fmt.Errorf("dial: %w", ownerErr))
				case 1:
					finish(nil)
					finish(io.EOF)
				case 2: // closed by id from elsewhere while bytes flow
					toClose <- c.ID()
					select {
					case <-called:
					case <-time.After(waitLimit):
						errc <- fmt.Errorf("worker %d cycle %d: hook not called", w, i)
						return
					}
					c.AddDown(1)
					rec.down++
					finish(net.ErrClosed)
				case 3:
					c.Abort(abortErr)
					finish(io.ErrClosedPipe)
				case 4: // both ends at once, and the user
					var fw sync.WaitGroup
					fw.Go(func() { finish(io.EOF) })
					fw.Go(func() { finish(net.ErrClosed) })
					fw.Go(func() { r.CloseConn(c.ID()) })
					fw.Wait()
				case 5:
					if i%50 == 0 {
						r.CloseAll() // hits other workers' connections too
					}
					finish(nil)
				}
			}
		})
	}
	wg.Wait()
	close(toClose)
	<-closerDone
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}

	if n := liveLen(r); n != 0 {
		t.Fatalf("%d records left live", n)
	}
	final := r.Snapshot()
	stopAt <- final.Seq
	out := chantest.Within(t, 5*waitLimit, "the reader's result", res)
	sub.Close()
	if out.err != nil {
		t.Fatal(out.err)
	}

	total := workers * cycles
	if len(records) != total || len(out.byID) != total {
		t.Fatalf("%d records, %d ids in events, want %d", len(records), len(out.byID), total)
	}
	var sumUp, sumDown int64
	for id, rec := range records {
		tl := out.byID[id]
		if tl == nil || tl.opened != 1 || tl.closed != 1 || tl.established > 1 {
			t.Fatalf("%v: events %+v, want one opened and one closed", id, tl)
		}
		info := out.closed[id]
		if info.Up != rec.up || info.Down != rec.down {
			t.Fatalf("%v: closed with %d/%d bytes, want %d/%d", id, info.Up, info.Down, rec.up, rec.down)
		}
		sumUp += rec.up
		sumDown += rec.down
		hooks := rec.hooks.Load()
		aborted := errors.Is(info.Err, ErrClosedByUser) || errors.Is(info.Err, abortErr)
		if hooks > 1 || (hooks == 1) != aborted {
			t.Fatalf("%v: hook ran %d times, reason %v", id, hooks, info.Err)
		}
	}
	tot := final.Totals
	if tot.Opened != uint64(total) || tot.Active != 0 || tot.Up != sumUp || tot.Down != sumDown {
		t.Fatalf("totals %+v, want opened %d, %d/%d bytes", tot, total, sumUp, sumDown)
	}
	if len(final.Closed) != 100 {
		t.Fatalf("history holds %d", len(final.Closed))
	}
}
