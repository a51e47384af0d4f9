package core_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// engine's Stop and Close must end everything they started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
