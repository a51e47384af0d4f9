package api

import (
	"encoding/json"
	"fmt"
	"testing"

	"porthole/core/registry"
)

// BenchmarkSnapshot10k is one /connections snapshot of 10,000 open
// connections: through the cache (what is sent) and encoded whole with
// encoding/json (the reference).
func BenchmarkSnapshot10k(b *testing.B) {
	reg := registry.New(registry.Options{})
	defer reg.Close()
	s := New(Options{Backend: stubBackend{reg}})
	defer s.Close()
	var finish []func(error)
	for i := range 10000 {
		c, f := reg.Register(registry.Meta{Proto: registry.ProtoConnect, Client: fmt.Sprintf("127.0.0.1:%d", 10000+i),
			Target: fmt.Sprintf("host%d.example.com:443", i), Route: registry.RouteTunnel}, func(error) {})
		c.Established("93.184.216.34:443")
		c.SetProcess(&registry.Process{PID: 42, Name: "firefox", Path: "/usr/lib/firefox/firefox", UID: 1000})
		finish = append(finish, f)
	}
	defer func() {
		for _, f := range finish {
			f(nil)
		}
	}()
	b.Run("cached", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = s.snapshotBytes(buf[:0])
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		var n int
		for b.Loop() {
			out, err := json.Marshal(s.snapshot())
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}
