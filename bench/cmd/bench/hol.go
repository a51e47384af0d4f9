package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Head-of-line figures: how long a 1-byte echo takes while bulk downloads
// share the path (for the tunnels: the same session and WebSocket).
const (
	holBulk     = 4
	holInterval = 10 * time.Millisecond
	holWarmup   = 300 * time.Millisecond // bulk streams reach full speed first
)

// headOfLine starts holBulk endless downloads, then sends a 1-byte ping
// through an echo connection every holInterval for dur (the next ping
// leaves at once when one took longer), and returns the echo latency p50
// and p99 in ms. Every connection comes from dial.
func headOfLine(dial dialFunc, dur time.Duration) (p50, p99 float64, err error) {
	echo, err := dial()
	if err != nil {
		return 0, 0, err
	}
	defer echo.Close()
	if _, err := io.WriteString(echo, "ECHO\n"); err != nil {
		return 0, 0, fmt.Errorf("hol: echo command: %w", err)
	}

	var stopping atomic.Bool
	var wg sync.WaitGroup
	bulk := make([]net.Conn, 0, holBulk)
	var bulkErr atomic.Pointer[error] // the first bulk stream to fail
	var moved atomic.Int64
	defer func() {
		stopping.Store(true)
		for _, c := range bulk {
			c.Close()
		}
		wg.Wait()
	}()
	for i := range holBulk {
		c, err := dial()
		if err != nil {
			return 0, 0, err
		}
		bulk = append(bulk, c)
		if _, err := fmt.Fprintf(c, "DOWN %d\n", int64(math.MaxInt64)); err != nil {
			return 0, 0, fmt.Errorf("hol: bulk command: %w", err)
		}
		wg.Go(func() {
			buf := make([]byte, len(chunk))
			for {
				n, err := c.Read(buf)
				moved.Add(int64(n))
				if err != nil {
					if !stopping.Load() {
						e := fmt.Errorf("hol: bulk stream %d: %w", i, err)
						bulkErr.CompareAndSwap(nil, &e)
					}
					return
				}
			}
		})
	}
	time.Sleep(holWarmup)
	if moved.Load() == 0 {
		return 0, 0, errors.New("hol: no bulk bytes moved during the warm-up")
	}

	lat := make([]time.Duration, 0, int(dur/holInterval)+1)
	var b [1]byte
	start := time.Now()
	for next := start; time.Since(start) < dur; next = next.Add(holInterval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		echo.SetDeadline(t0.Add(opTimeout))
		if _, err := echo.Write([]byte{'p'}); err != nil {
			return 0, 0, fmt.Errorf("hol: ping: %w", err)
		}
		if _, err := io.ReadFull(echo, b[:]); err != nil {
			return 0, 0, fmt.Errorf("hol: pong: %w", err)
		}
		lat = append(lat, time.Since(t0))
		if now := time.Now(); now.After(next.Add(holInterval)) {
			next = now.Add(-holInterval) // late: the next ping leaves at once
		}
	}
	if e := bulkErr.Load(); e != nil {
		return 0, 0, *e
	}
	slices.Sort(lat)
	return ms(percentile(lat, 50)), ms(percentile(lat, 99)), nil
}
