package tunnel

import (
	"io"
	"testing"
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
