package e2e

// The byte stream the lifecycle test moves: the origin sends it and the
// streaming clients write it, and both sides check what they receive
// against it.

import (
	"bytes"
	"io"
	"math/rand/v2"
)

// lcPattern is the byte stream the origin sends and the streaming clients
// write: byte i of a stream is lcPattern[i%len(lcPattern)].
var lcPattern = func() []byte {
	b := make([]byte, 64<<10+7) // not a power of two: misplaced chunks show
	r := rand.New(rand.NewChaCha8([32]byte{'p', 'o', 'r', 't', 'h', 'o', 'l', 'e'}))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// writePattern writes n bytes of the pattern stream starting at offset off.
func writePattern(w io.Writer, off, n int64) (int64, error) {
	var done int64
	for done < n {
		at := int((off + done) % int64(len(lcPattern)))
		chunk := lcPattern[at:]
		if int64(len(chunk)) > n-done {
			chunk = chunk[:n-done]
		}
		k, err := w.Write(chunk)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// isPattern reports whether b is the pattern stream from offset off.
func isPattern(b []byte, off int64) bool {
	for len(b) > 0 {
		at := int(off % int64(len(lcPattern)))
		n := min(len(b), len(lcPattern)-at)
		if !bytes.Equal(b[:n], lcPattern[at:at+n]) {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}
