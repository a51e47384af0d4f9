package tunnel

import (
	"io"
	"testing"

	"github.com/rs/xid"
)

// BenchmarkStreamThroughput is one stream over a real WebSocket on
// loopback, client to exit, 64 KiB writes. With -benchmem it also shows what
// the data path allocates.
func BenchmarkStreamThroughput(b *testing.B) {
	client, _, opened := sessionPair(b, Config{})
	st, err := client.Open(xid.New(), "bench:1", nil)
	if err != nil {
		b.Fatal(err)
	}
	peer := <-opened
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
