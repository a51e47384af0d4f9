package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Isolation figures: what a stalled stream costs a download beside it on
// the same path (for the tunnels: the same session and WebSocket). The
// stalled stream asks the origin for endless bytes and never reads them,
// as a paused video or a hung tab does. A per-stream window stops it at
// its window; a session without one (smux's protocol 1) fills its shared
// buffer and then stops every stream.
const (
	stallFill  = 500 * time.Millisecond // the stalled stream fills what it can first
	stallLimit = 10 * time.Second       // the download beside it is cut off here
)

// besideStalled downloads n bytes alone, then beside a stalled stream,
// then alone again, each on a fresh connection from dial. It returns the
// rate beside the stalled stream in MB/s and that rate ÷ the mean of the
// two alone, so drift during the run cancels out. A download beside the
// stalled stream that is cut off at stallLimit counts what arrived.
func besideStalled(dial dialFunc, n int64) (beside, ratio float64, err error) {
	before, err := download(dial, n)
	if err != nil {
		return 0, 0, err
	}
	stalled, err := dial()
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Fprintf(stalled, "DOWN %d\n", int64(math.MaxInt64)); err != nil {
		stalled.Close()
		return 0, 0, fmt.Errorf("stall: command: %w", err)
	}
	time.Sleep(stallFill)
	beside, err = downloadUntil(dial, n, stallLimit)
	stalled.Close()
	if err != nil {
		return 0, 0, err
	}
	after, err := download(dial, n)
	if err != nil {
		return 0, 0, fmt.Errorf("stall: download after the stalled stream closed: %w", err)
	}
	return beside, beside / ((before + after) / 2), nil
}

// downloadUntil is download cut off after limit: MB/s of what arrived by
// then (or of all n bytes, if they did). A connection that fails to open
// (a session stopped by the stalled stream cannot carry the CONNECT's
// answer: a timeout, or the proxy's own 502) moved nothing: 0, said on
// stderr. Whether the path works at all is the download after it.
func downloadUntil(dial dialFunc, n int64, limit time.Duration) (float64, error) {
	c, err := dial()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: stall: the download beside the stalled stream did not connect: %v\n", err)
		return 0, nil
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(limit))
	if _, err := fmt.Fprintf(c, "DOWN %d\n", n); err != nil {
		return 0, fmt.Errorf("stall: download command: %w", err)
	}
	buf := make([]byte, len(chunk))
	var got int64
	for got < n {
		m, err := c.Read(buf)
		got += int64(m)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if errors.Is(err, io.EOF) && got == n {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("stall: download: read after %d of %d bytes: %w", got, n, err)
		}
	}
	return float64(got) / mb / time.Since(start).Seconds(), nil
}
