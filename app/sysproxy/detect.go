package sysproxy

import (
	"log/slog"
	"strings"
)

// Finding a backend by the name a journal records; Detect and oneBackend,
// which know the platform's backends, are in detect_unix.go and (macOS,
// Windows: one backend each) detect_native.go.

// backendOrErr keeps a failed constructor's nil pointer out of the
// interface.
func backendOrErr[B Backend](b B, err error) (Backend, error) {
	if err != nil {
		return nil, err
	}
	return b, nil
}

// backendByName builds the backend a journal names; "a+b" is a multi.
func backendByName(name string, log *slog.Logger) (Backend, error) {
	parts := strings.Split(name, "+")
	if len(parts) == 1 {
		return oneBackend(name, log)
	}
	m := make(multi, 0, len(parts))
	for _, p := range parts {
		b, err := oneBackend(p, log)
		if err != nil {
			return nil, err
		}
		m = append(m, b)
	}
	return m, nil
}
