package sysproxy

import (
	"fmt"
	"log/slog"
)

// Detect returns the macOS backend (networksetup on every enabled network
// service).
func Detect(log *slog.Logger) (Backend, error) {
	b, err := newMacOS()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return b, nil
}

func oneBackend(name string, log *slog.Logger) (Backend, error) {
	if name == "macos" {
		return backendOrErr(newMacOS())
	}
	return nil, fmt.Errorf("%w: %q", errOtherBackend, name)
}
