package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// delayRelay is a userspace TCP relay that delays every byte by a fixed
// time in each direction, so that a loopback connection through it has a
// round trip of twice that: an emulated long link.
//
// Each direction is a goroutine pair: a reader that reads as fast as the
// source sends and queues what it read with the time it is due, and a
// writer that writes each piece when it is due, in order. The queue holds
// up to relayQueueCap bytes per direction, far more than a fast stream has
// in flight over the delay, so the relay adds latency, not a window.
// Unlike a real long link, the TCP connections on either side of the relay
// see a loopback round trip: there is no slow start or congestion window
// over the emulated delay, only the application's own flow control.
//
// Close closes the listener and every connection and waits for all
// goroutines.
type delayRelay struct {
	tcpServer
	target string
	delay  time.Duration
}

var errRelayClosed = errors.New("relay closed")

const (
	relayQueueCap = 64 << 20 // bytes (buffer capacity) queued per direction
	relayReadSize = 64 << 10
	relayCopyMax  = 16 << 10 // reads up to this size are copied out of the read buffer
	relayBatchMax = 64       // pieces written with one writev
)

var relayBufs = sync.Pool{New: func() any { b := make([]byte, relayReadSize); return &b }}

func startDelayRelay(target string, delay time.Duration) (*delayRelay, error) {
	r := &delayRelay{target: target, delay: delay}
	if err := r.listen("127.0.0.1:0", r.serve); err != nil {
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	return r, nil
}

func (r *delayRelay) serve(a net.Conn) {
	b, err := net.DialTimeout("tcp", r.target, dialTimeout)
	if err != nil {
		return
	}
	if !r.track(b) {
		b.Close()
		return
	}
	defer r.untrack(b)
	var once sync.Once
	kill := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.pump(a, b, kill) })
	wg.Go(func() { r.pump(b, a, kill) })
	wg.Wait()
}

// pump delays src → dst until src ends (its end is passed on as a
// half-close, after the delay) or either connection fails (then kill
// closes both).
func (r *delayRelay) pump(src, dst net.Conn, kill func()) {
	q := &delayQueue{limit: relayQueueCap, more: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Go(func() { r.read(src, q) })
	r.write(dst, q, kill)
	wg.Wait()
}

func (r *delayRelay) read(src net.Conn, q *delayQueue) {
	bp := relayBufs.Get().(*[]byte)
	defer func() { relayBufs.Put(bp) }()
	for {
		n, err := src.Read(*bp)
		if n > 0 {
			due := time.Now().Add(r.delay)
			var piece []byte
			if n <= relayCopyMax {
				piece = append([]byte(nil), (*bp)[:n]...)
			} else {
				piece = (*bp)[:n]
				bp = relayBufs.Get().(*[]byte)
			}
			if !q.push(piece, due) {
				return // the writer gave up; it has closed both ends
			}
		}
		if err != nil {
			q.finish(err, time.Now().Add(r.delay))
			return
		}
	}
}

func (r *delayRelay) write(dst net.Conn, q *delayQueue, kill func()) {
	batch := make([][]byte, 0, relayBatchMax)
	for {
		var ok bool
		batch, ok = q.pop(batch[:0])
		if !ok {
			sleepUntil(q.endDue)
			if errors.Is(q.end, io.EOF) {
				closeWrite(dst)
			} else {
				kill()
			}
			return
		}
		charged := 0
		for _, b := range batch {
			charged += cap(b)
		}
		bufs := net.Buffers(batch)
		_, err := bufs.WriteTo(dst)
		for _, b := range batch {
			if cap(b) == relayReadSize {
				b = b[:relayReadSize]
				relayBufs.Put(&b)
			}
		}
		clear(batch)
		q.release(charged)
		if err != nil {
			q.abort()
			kill()
			return
		}
	}
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// drain waits, up to d, until no connection is open through the relay.
func (r *delayRelay) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r.open() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops the relay: the listener and every connection are closed,
// and Close returns when all its goroutines have ended.
func (r *delayRelay) Close() error {
	first, err := r.close()
	if !first {
		return errRelayClosed
	}
	return err
}

// delayQueue is one direction's FIFO of timestamped pieces between its
// reader and its writer goroutine.
type delayQueue struct {
	limit int
	more  chan struct{} // capacity 1: a piece or the end was queued
	room  chan struct{} // capacity 1: bytes were released, or the writer gave up

	mu      sync.Mutex
	items   []delayed
	head    int
	charged int       // buffer capacity held by queued pieces
	ended   bool      // the reader is done: end and endDue are set
	end     error     // io.EOF or why reading failed
	endDue  time.Time // when the end is passed on
	dead    bool      // the writer gave up
}

type delayed struct {
	b   []byte
	due time.Time
}

// push queues b, waiting while the queue is full; false if the writer gave
// up.
func (q *delayQueue) push(b []byte, due time.Time) bool {
	q.mu.Lock()
	for !q.dead && q.charged > 0 && q.charged+cap(b) > q.limit {
		q.mu.Unlock()
		<-q.room
		q.mu.Lock()
	}
	defer q.mu.Unlock()
	if q.dead {
		return false
	}
	q.items = append(q.items, delayed{b, due})
	q.charged += cap(b)
	wake(q.more)
	return true
}

// finish records the end of the source.
func (q *delayQueue) finish(err error, due time.Time) {
	q.mu.Lock()
	q.ended, q.end, q.endDue = true, err, due
	q.mu.Unlock()
	wake(q.more)
}

// pop waits for the next piece and until it is due, then appends it and
// the pieces after it that are due too (up to relayBatchMax) to batch.
// ok is false when the queue is drained and ended (end, endDue are then
// stable).
func (q *delayQueue) pop(batch [][]byte) (_ [][]byte, ok bool) {
	q.mu.Lock()
	for q.head == len(q.items) && !q.ended {
		q.mu.Unlock()
		<-q.more
		q.mu.Lock()
	}
	if q.head == len(q.items) {
		q.mu.Unlock()
		return batch, false
	}
	due := q.items[q.head].due
	q.mu.Unlock()
	sleepUntil(due) // only this goroutine removes items: the head stays
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.items) && len(batch) < relayBatchMax && !q.items[q.head].due.After(now) {
		batch = append(batch, q.items[q.head].b)
		q.items[q.head] = delayed{}
		q.head++
	}
	// Reuse the slice's front once most of it is consumed.
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 1024 && 2*q.head >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return batch, true
}

func (q *delayQueue) release(n int) {
	q.mu.Lock()
	q.charged -= n
	q.mu.Unlock()
	wake(q.room)
}

// abort makes push fail from now on.
func (q *delayQueue) abort() {
	q.mu.Lock()
	q.dead = true
	q.mu.Unlock()
	wake(q.room)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
