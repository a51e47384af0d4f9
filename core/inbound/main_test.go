package inbound_test

import (
	"testing"

	"go.uber.org/goleak"

	"porthole/internal/childproc"
)

// Every test here starts engines, origins and clients; when they are all
// done not one goroutine may be left.
func TestMain(m *testing.M) {
	childproc.AsChild(benchClientEnv, benchClient)
	goleak.VerifyTestMain(m)
}
