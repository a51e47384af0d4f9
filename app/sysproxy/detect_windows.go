package sysproxy

import (
	"fmt"
	"log/slog"
)

// Detect returns the Windows backend (WinINet per-connection options of
// the LAN and every dial-up/VPN entry).
func Detect(log *slog.Logger) (Backend, error) {
	b, err := newWinINet()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return b, nil
}

func oneBackend(name string, log *slog.Logger) (Backend, error) {
	if name == "windows" {
		return backendOrErr(newWinINet())
	}
	return nil, fmt.Errorf("%w: %q", errOtherBackend, name)
}
