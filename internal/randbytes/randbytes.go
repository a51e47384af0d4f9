// Package randbytes makes the payloads tests send: bytes that look random,
// so that a misplaced or repeated chunk cannot pass for the right one, and
// are the same for the same seed, so that a failure repeats. Only tests
// import it.
package randbytes

import (
	"encoding/binary"
	"math/rand/v2"
)

// New returns n bytes of the ChaCha8 stream keyed with seed.
func New(seed uint64, n int) []byte {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	if _, err := rand.NewChaCha8(key).Read(b); err != nil {
		panic(err) // ChaCha8.Read never fails
	}
	return b
}
