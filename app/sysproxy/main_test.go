package sysproxy

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// enableThenCrash enables through m and then drops m as a crash would: no
// Disable, and the journal's lock released, as the OS does for a process
// that died.
func enableThenCrash(m *Manager, addr string, bypass []string) error {
	if err := m.Enable(addr, bypass); err != nil {
		return err
	}
	return m.owner.release()
}
