package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// transferTimeout bounds one bulk transfer; loopback moves 1 GiB in
	// seconds, so hitting it means something is stuck.
	transferTimeout = 5 * time.Minute
	// opTimeout bounds one small request/response exchange.
	opTimeout = 10 * time.Second
)

const mb = 1e6 // figures are in decimal megabytes per second

// download measures one DOWN stream of n bytes, in MB/s.
func download(dial dialFunc, n int64) (float64, error) {
	c, err := dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if err := downloadOn(c, n); err != nil {
		return 0, err
	}
	return float64(n) / mb / time.Since(start).Seconds(), nil
}

func downloadOn(c net.Conn, n int64) error {
	c.SetDeadline(time.Now().Add(transferTimeout))
	if _, err := fmt.Fprintf(c, "DOWN %d\n", n); err != nil {
		return fmt.Errorf("download: send command: %w", err)
	}
	buf := make([]byte, len(chunk))
	var got int64
	for {
		m, err := c.Read(buf)
		got += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("download: read after %d of %d bytes: %w", got, n, err)
		}
	}
	if got != n {
		return fmt.Errorf("download: got %d bytes, want %d", got, n)
	}
	return nil
}

// upload measures one UP stream of n bytes, until the origin's OK, in MB/s.
func upload(dial dialFunc, n int64) (float64, error) {
	c, err := dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(transferTimeout))
	start := time.Now()
	if _, err := fmt.Fprintf(c, "UP %d\n", n); err != nil {
		return 0, fmt.Errorf("upload: send command: %w", err)
	}
	if err := writeN(c, n); err != nil {
		return 0, fmt.Errorf("upload: write: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "OK\n" {
		return 0, fmt.Errorf("upload: want OK, got %q: %v", line, err)
	}
	return float64(n) / mb / time.Since(start).Seconds(), nil
}

// parallelDownload opens streams connections first, then downloads total
// bytes split evenly over them at once; the result is aggregate MB/s.
func parallelDownload(dial dialFunc, streams int, total int64) (float64, error) {
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range streams {
		c, err := dial()
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
	}
	per := total / int64(streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Go(func() { errs[i] = downloadOn(c, per) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(per*int64(streams)) / mb / elapsed.Seconds(), nil
}

// connRate makes total connections with the given number of concurrent
// workers; each connects, sends one byte through ECHO, reads it back and
// closes. It returns connections per second and latency p50/p99 in ms.
func connRate(dial dialFunc, total, workers int) (perSec, p50, p99 float64, err error) {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				d, err := echoOnce(dial)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := failed.Load(); e != nil {
		return 0, 0, 0, *e
	}
	slices.Sort(lat)
	return float64(total) / elapsed.Seconds(), ms(percentile(lat, 50)), ms(percentile(lat, 99)), nil
}

// echoOnce is one connect + 1-byte ECHO round trip + close.
func echoOnce(dial dialFunc) (time.Duration, error) {
	start := time.Now()
	c, err := dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if _, err := io.WriteString(c, "ECHO\nx"); err != nil {
		return 0, fmt.Errorf("echo: write: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'x' {
		return 0, fmt.Errorf("echo: read back %q: %v", b[0], err)
	}
	return time.Since(start), nil
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// firstByteLatency makes samples requests one after another and returns
// the median time from connecting to the proxy until the first byte of
// the response, in ms. Each request is a new connection.
func firstByteLatency(samples int, get func() (time.Duration, error)) (float64, error) {
	lat := make([]time.Duration, 0, samples)
	for range samples {
		d, err := get()
		if err != nil {
			return 0, err
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	return ms(percentile(lat, 50)), nil
}

// plainGet sends an absolute-URI GET for origin through the HTTP proxy:
// the proxy opens the upstream connection and sends the request right
// behind it, without waiting for the connection to be confirmed.
func plainGet(proxy, origin string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", proxy, dialTimeout)
	if err != nil {
		return 0, fmt.Errorf("dial proxy %s: %w", proxy, err)
	}
	defer c.Close()
	if err := c.SetDeadline(start.Add(opTimeout)); err != nil {
		return 0, fmt.Errorf("get: %w", err)
	}
	if _, err := fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin, origin); err != nil {
		return 0, fmt.Errorf("get: write: %w", err)
	}
	return firstByteOf(c, start)
}

// connectGet makes a CONNECT tunnel to origin through the proxy, then
// sends the same GET inside it.
func connectGet(proxy, origin string) (time.Duration, error) {
	start := time.Now()
	c, err := connectDialer(proxy, origin)()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(start.Add(opTimeout)); err != nil {
		return 0, fmt.Errorf("get: %w", err)
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin); err != nil {
		return 0, fmt.Errorf("get: write: %w", err)
	}
	return firstByteOf(c, start)
}

// firstByteOf waits for the response's first byte, notes the time since
// start, then checks the whole response.
func firstByteOf(c net.Conn, start time.Time) (time.Duration, error) {
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return 0, fmt.Errorf("get: no response: %w", err)
	}
	d := time.Since(start)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, fmt.Errorf("get: read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return 0, fmt.Errorf("get: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != httpBody {
		return 0, fmt.Errorf("get: %s, body %q", resp.Status, body)
	}
	return d, nil
}
