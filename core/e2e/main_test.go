// Package e2e holds the end-to-end tests of the engine (porthole/core): a
// real engine on loopback, real clients (curl, net/http, SOCKS), real
// origins, and in tunnel mode a real exit server, with every connection's
// registry record and the engine's log checked. It holds tests only; the
// engine's own code and unit tests stay in core and its packages.
package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// engine's Stop and Close must end everything they started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
