package procinfo

import (
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLookup: cost of one lookup of a connection with 1,000 or
// 10,000 other sockets open (held by this process), warm (the cache knows
// the client) and cold (a new Resolver: one scan of every process). The
// client is this process ("warm", "cold": the worst case for a scan, its
// fds are the other sockets) or a child holding one connection
// ("child": what a proxy meets, the program is another process).
// Reports p50/p99 in µs and CPU time per 1,000 lookups.
func BenchmarkLookup(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	for _, others := range []int{1000, 10000} {
		for _, mode := range []string{"warm", "cold", "child"} {
			b.Run(strconv.Itoa(others)+"/"+mode, func(b *testing.B) { benchLookup(b, others, mode) })
		}
	}
}

func benchLookup(b *testing.B, others int, mode string) {
	cold := mode == "cold"
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for range others / 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Skipf("%d sockets: %v", others, err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, c, s)
	}
	var s net.Conn
	if mode == "child" {
		_, _, local := startChild(b, self(b), "hold", []string{ln.Addr().String()})
		s = acceptFrom(b, ln, local)
	} else {
		// The client: this process too (the other sockets are its own,
		// the worst case for a scan).
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if s, err = ln.Accept(); err != nil {
			b.Fatal(err)
		}
		defer s.Close()
	}
	r := New()
	defer r.Close()
	r.Lookup(s.LocalAddr(), s.RemoteAddr())
	lat := make([]time.Duration, 0, b.N)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for range b.N {
		rr := r
		if cold {
			rr = New()
		}
		t0 := time.Now()
		p := rr.Lookup(s.LocalAddr(), s.RemoteAddr())
		lat = append(lat, time.Since(t0))
		if cold {
			_ = rr.Close()
		}
		if !p.Known() {
			b.Fatalf("lookup: %+v", p)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * 1000 / time.Duration(b.N)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/1e3, "cpu-ms/1000")
}
