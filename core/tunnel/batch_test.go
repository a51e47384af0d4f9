package tunnel

import (
	"bytes"
	"testing"
)

// TestMaskMatchesTheRFC checks the word-at-a-time mask against RFC 6455
// §5.3 byte by byte, for lengths around the 8-byte steps.
func TestMaskMatchesTheRFC(t *testing.T) {
	key := []byte{0x12, 0x34, 0x56, 0x78}
	for n := range 80 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		want := bytes.Clone(p)
		for i := range want {
			want[i] ^= key[i%4]
		}
		mask(key, p)
		if !bytes.Equal(p, want) {
			t.Fatalf("length %d: % x, want % x", n, p, want)
		}
	}
}

func BenchmarkMask(b *testing.B) {
	key := []byte{1, 2, 3, 4}
	p := make([]byte, MaxData+HeaderSize)
	b.SetBytes(int64(len(p)))
	for range b.N {
		mask(key, p)
	}
}
