//go:build darwin || windows

package sysproxy

import (
	"fmt"
	"log/slog"
)

// macOS and Windows have one backend each, nativeBackend (networksetup,
// WinINet), named nativeName in a journal; both are in detect_GOOS.go.

// Detect returns the platform's backend.
func Detect(log *slog.Logger) (Backend, error) {
	b, err := nativeBackend()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return b, nil
}

func oneBackend(name string, log *slog.Logger) (Backend, error) {
	if name == nativeName {
		return nativeBackend()
	}
	return nil, fmt.Errorf("%w: %q", errOtherBackend, name)
}
