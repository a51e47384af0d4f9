package main

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// How a fresh stream ramps up over a long link: one download for a fixed
// time, with the bytes received so far marked every few milliseconds.

const (
	rampFirst = 6 * time.Second // the "first seconds" a user waits through
	rampTail  = 2 * time.Second // after them: the rate once grown
	rampEvery = 5 * time.Millisecond
)

// rampResult is what one ramp download shows.
type rampResult struct {
	first  float64       // MB/s over the first rampFirst
	grown  float64       // MB/s over the last rampTail
	reach  time.Duration // when the rate first reached 90 % of grown
	marks  []rampMark
	ending time.Duration
}

type rampMark struct {
	at  time.Duration
	got int64
}

// rampDownload downloads over dial for rampFirst+rampTail and measures
// its ramp. The reach window (the span over which a rate is taken when
// looking for 90 %) is at least 4 round trips, because a window-limited
// stream arrives in bursts of one window per round trip.
func rampDownload(dial dialFunc, rtt time.Duration) (rampResult, error) {
	var r rampResult
	c, err := dial()
	if err != nil {
		return r, err
	}
	defer c.Close()
	limit := rampFirst + rampTail
	start := time.Now()
	if err := c.SetDeadline(start.Add(limit)); err != nil {
		return r, fmt.Errorf("ramp: %w", err)
	}
	// More than any link here moves in the time: the deadline ends it.
	if _, err := fmt.Fprintf(c, "DOWN %d\n", int64(1)<<40); err != nil {
		return r, fmt.Errorf("ramp: send command: %w", err)
	}
	r.marks = make([]rampMark, 1, limit/rampEvery+2) // bounded: one per rampEvery
	buf := make([]byte, len(chunk))
	var got int64
	for {
		m, err := c.Read(buf)
		got += int64(m)
		if at := time.Since(start); m > 0 && at-r.marks[len(r.marks)-1].at >= rampEvery {
			r.marks = append(r.marks, rampMark{at, got})
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && got > 0 {
			break
		}
		if err != nil {
			return r, fmt.Errorf("ramp: read after %d bytes: %w", got, err)
		}
	}
	r.ending = time.Since(start)
	r.marks = append(r.marks, rampMark{r.ending, got})
	r.first = float64(r.gotAt(rampFirst)) / mb / rampFirst.Seconds()
	from := r.ending - rampTail
	r.grown = float64(got-r.gotAt(from)) / mb / rampTail.Seconds()
	r.reach = r.reachOf(0.9*r.grown, max(200*time.Millisecond, 4*rtt))
	return r, nil
}

// gotAt is the bytes received by t, interpolated between marks.
func (r *rampResult) gotAt(t time.Duration) int64 {
	prev := rampMark{}
	for _, mk := range r.marks {
		if mk.at >= t {
			if mk.at == prev.at {
				return mk.got
			}
			f := float64(t-prev.at) / float64(mk.at-prev.at)
			return prev.got + int64(f*float64(mk.got-prev.got))
		}
		prev = mk
	}
	return prev.got
}

// reachOf is the middle of the first span of length w whose rate is at
// least rate (MB/s), or the whole time if none is.
func (r *rampResult) reachOf(rate float64, w time.Duration) time.Duration {
	for t := time.Duration(0); t+w <= r.ending; t += rampEvery {
		if float64(r.gotAt(t+w)-r.gotAt(t))/mb/w.Seconds() >= rate {
			return t + w/2
		}
	}
	return r.ending
}

// trace prints the rate per tenth of a second, for BENCH_RAMP_TRACE.
func (r *rampResult) trace(name string) {
	fmt.Fprintf(os.Stderr, "bench: ramp %s:", name)
	step := 100 * time.Millisecond
	for t := time.Duration(0); t+step <= r.ending; t += step {
		fmt.Fprintf(os.Stderr, " %.0f", float64(r.gotAt(t+step)-r.gotAt(t))/mb/step.Seconds())
	}
	fmt.Fprintln(os.Stderr)
}
