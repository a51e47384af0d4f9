package registry

import (
	"testing"
	"time"
)

// The relay's hot path: AddUp and AddDown must neither allocate nor lock.

func BenchmarkAddUp(b *testing.B) {
	r := newRegistry(b, Options{StatsInterval: quiet})
	c, finish := r.Register(testMeta, nil)
	defer finish(nil)
	b.ReportAllocs()
	for b.Loop() {
		c.AddUp(32 << 10)
		c.AddDown(32 << 10)
	}
}

func BenchmarkAddUpParallel(b *testing.B) {
	r := newRegistry(b, Options{StatsInterval: quiet})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, finish := r.Register(testMeta, nil) // one connection per relay goroutine
		defer finish(nil)
		for pb.Next() {
			c.AddUp(32 << 10)
			c.AddDown(32 << 10)
		}
	})
}

func BenchmarkAddUpParallelShared(b *testing.B) {
	r := newRegistry(b, Options{StatsInterval: quiet})
	c, finish := r.Register(testMeta, nil) // both directions of one connection, and more
	defer finish(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.AddUp(32 << 10)
			c.AddDown(32 << 10)
		}
	})
}

func TestAddUpNoAllocs(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	c, finish := r.Register(testMeta, nil)
	defer finish(nil)
	if n := testing.AllocsPerRun(1000, func() {
		c.AddUp(1)
		c.AddDown(2)
		_ = c.Up() + c.Down()
	}); n != 0 {
		t.Fatalf("AddUp/AddDown allocate %v times per run", n)
	}
}

// TestAddUpNoLock holds the registry's lock, as a long snapshot or tick
// would, and counts bytes meanwhile: the hot path must not wait for it.
func TestAddUpNoLock(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	c, finish := r.Register(testMeta, nil)
	defer finish(nil)
	done := make(chan struct{})
	r.mu.Lock()
	go func() {
		defer close(done)
		for range 1000 {
			c.AddUp(1)
			c.AddDown(1)
		}
		_ = c.Up() + c.Down()
	}()
	select {
	case <-done:
		r.mu.Unlock()
	case <-time.After(waitLimit):
		r.mu.Unlock()
		<-done
		t.Fatal("AddUp/AddDown waited for the registry lock")
	}
	if c.Up() != 1000 || c.Down() != 1000 {
		t.Fatalf("counted %d/%d", c.Up(), c.Down())
	}
}
