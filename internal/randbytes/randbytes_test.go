package randbytes

import (
	"bytes"
	"testing"
)

func TestNewIsSeededAndLooksRandom(t *testing.T) {
	a, b := New(1, 4096), New(1, 4096)
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed gave different bytes")
	}
	if bytes.Equal(a, New(2, 4096)) {
		t.Fatal("another seed gave the same bytes")
	}
	if !bytes.Equal(New(1, 100), a[:100]) {
		t.Error("a shorter payload is not a prefix of a longer one of the same seed")
	}
	seen := map[byte]bool{}
	for _, c := range a {
		seen[c] = true
	}
	if len(seen) < 200 {
		t.Errorf("4096 bytes use only %d values", len(seen))
	}
}
