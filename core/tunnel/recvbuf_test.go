package tunnel

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"porthole/internal/randbytes"
)

// TestRecvBufKeepsEveryByteInOrder delivers payloads of random sizes (some
// in pooled message buffers that may be kept, some copied) and reads them
// back with random read sizes: nothing is lost, duplicated or reordered,
// the buffers held stay within about twice the unread bytes, and a drained
// buffer holds no chunk at all.
func TestRecvBufKeepsEveryByteInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var r recvBuf
	var sent, got bytes.Buffer
	next := byte(0)
	for round := range 800 {
		size := 1 + rng.IntN(MaxData)
		if rng.IntN(3) == 0 {
			size = 1 + rng.IntN(64) // small frames, as an interactive peer sends
		}
		fb := framePool.Get().(*[]byte)
		p := (*fb)[HeaderSize : HeaderSize+size]
		for i := range p {
			p[i] = next
			next++
		}
		sent.Write(p)
		if !r.deliver(p, fb) {
			framePool.Put(fb)
		}
		if held, limit := len(r.chunks)*frameBufSize, 2*r.len()+2*frameBufSize; held > limit {
			t.Fatalf("round %d: %d bytes of buffers for %d unread bytes", round, held, r.len())
		}
		if rng.IntN(2) == 0 {
			buf := make([]byte, 1+rng.IntN(3*MaxData))
			n := r.read(buf)
			got.Write(buf[:n])
		}
	}
	for r.len() > 0 {
		buf := make([]byte, 1+rng.IntN(MaxData))
		got.Write(buf[:r.read(buf)])
	}
	if !bytes.Equal(sent.Bytes(), got.Bytes()) {
		t.Fatalf("read %d bytes, sent %d: contents differ", got.Len(), sent.Len())
	}
	if r.chunks != nil {
		t.Fatalf("drained buffer still holds %d chunks", len(r.chunks))
	}
}

// TestRecvBufSmallFramesShareABuffer is the memory bound against a peer
// that sends one byte per frame to a stream nobody reads: the bytes are
// packed, not one message buffer each.
func TestRecvBufSmallFramesShareABuffer(t *testing.T) {
	var r recvBuf
	fb := framePool.Get().(*[]byte)
	defer framePool.Put(fb)
	for range 100_000 {
		p := (*fb)[HeaderSize : HeaderSize+1]
		if r.deliver(p, fb) {
			t.Fatal("a 1-byte payload kept its message buffer")
		}
	}
	if want := 100_000/(frameBufSize) + 1; len(r.chunks) > want {
		t.Fatalf("%d chunks for 100,000 bytes, want at most %d", len(r.chunks), want)
	}
	r.reset()
	if r.len() != 0 || r.chunks != nil {
		t.Fatal("reset left bytes or chunks")
	}
}

// TestStreamReleasesBuffersWhenDrained sends bulk data and small writes
// over a real session: every byte arrives in order, and once the reader
// has caught up the stream holds no receive buffer (an idle stream costs
// no buffer memory).
func TestStreamReleasesBuffersWhenDrained(t *testing.T) {
	_, _, st, peer := openStream(t, Config{}, "bulk:1")
	rng := rand.New(rand.NewPCG(3, 4))
	data := randbytes.New(3, 3<<20)
	written := make(chan error, 1)
	go func() {
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(100<<10))
			if rng.IntN(4) == 0 {
				n = min(len(rest), 1+rng.IntN(16))
			}
			if _, err := peer.Write(rest[:n]); err != nil {
				written <- err
				return
			}
			rest = rest[n:]
		}
		written <- peer.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, sent %d: contents differ", len(got), len(data))
	}
	st.mu.Lock()
	chunks, n := len(st.in.chunks), st.in.len()
	st.mu.Unlock()
	if chunks != 0 || n != 0 {
		t.Fatalf("drained stream still holds %d chunks, %d bytes", chunks, n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecvBufTake: take hands over whole chunks from the front, at least
// one and no more than max bytes beyond the first, leaving the rest in
// order.
func TestRecvBufTake(t *testing.T) {
	var r recvBuf
	for i := range 10 {
		fb := framePool.Get().(*[]byte)
		p := (*fb)[:MaxData]
		for j := range p {
			p[j] = byte(i)
		}
		if !r.deliver(p, fb) {
			framePool.Put(fb)
		}
	}
	taken, n := r.take(4*MaxData + MaxData/2)
	if len(taken) != 4 || n != 4*MaxData || r.len() != 6*MaxData {
		t.Fatalf("take: %d chunks, %d bytes, %d left; want 4, %d, %d", len(taken), n, r.len(), 4*MaxData, 6*MaxData)
	}
	for i, c := range taken {
		if len(c.data) != MaxData || c.data[0] != byte(i) {
			t.Errorf("chunk %d: %d bytes of %d, want %d of %d", i, len(c.data), c.data[0], MaxData, i)
		}
		framePool.Put(c.buf)
	}
	// Less than one chunk allowed: the first is taken anyway.
	if taken, n := r.take(1); len(taken) != 1 || n != MaxData || taken[0].data[0] != 4 {
		t.Errorf("take(1): %d chunks, %d bytes; want the next whole chunk", len(taken), n)
	}
	b := make([]byte, 6*MaxData)
	if got := r.read(b); got != 5*MaxData || b[0] != 5 || b[got-1] != 9 {
		t.Errorf("the rest: %d bytes from %d to %d, want %d from 5 to 9", got, b[0], b[got-1], 5*MaxData)
	}
	if r.chunks != nil {
		t.Error("an emptied buffer still holds its chunk array")
	}
}
