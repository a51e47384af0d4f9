package tunnel

import (
	"io"
	"sync"
	"testing"

	"github.com/rs/xid"
)

// BenchmarkStreamThroughput is one stream over a real WebSocket on
// loopback, client to exit, 64 KiB writes. With -benchmem it also shows what
// the data path allocates.
func BenchmarkStreamThroughput(b *testing.B) {
	_, _, st, peer := openStream(b, Config{}, "bench:1")
	drained := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, peer)
		drained <- err
	}()
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := st.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	if err := <-drained; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st.Close()
	peer.Close()
}

// BenchmarkManyStreamsDownload is 64 streams at once over one real
// WebSocket on loopback, exit to client, each writing 128 KiB at a time
// (as the exit's relay does) and the client reading 128 KiB at a time: the
// per-stream and per-frame costs of a busy session (scheduling among
// streams, WINDOW frames, wakeups), for a CPU profile.
func BenchmarkManyStreamsDownload(b *testing.B) {
	const streams, chunk = 64, 128 << 10
	client, _, opened := sessionPair(b, Config{})
	type pair struct{ st, peer *Stream }
	pairs := make([]pair, streams)
	for i := range pairs {
		st, err := client.Open(xid.New(), "bench:1", nil)
		if err != nil {
			b.Fatal(err)
		}
		pairs[i] = pair{st, <-opened}
	}
	per := max(b.N/streams, 1)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() {
			buf := make([]byte, chunk)
			for range per {
				if _, err := p.peer.Write(buf); err != nil {
					return
				}
			}
			_ = p.peer.CloseWrite()
		})
		wg.Go(func() {
			buf := make([]byte, chunk)
			for {
				if _, err := p.st.Read(buf); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	for _, p := range pairs {
		p.st.Close()
		p.peer.Close()
	}
}
