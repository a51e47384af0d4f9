// Package loglevel reads the log level names Porthole's two programs
// accept (--log-level, the config's log_level). It lives here, not in
// app/config, so that porthole-exit, which may import only core/ and
// internal/ (docs/ARCHITECTURE.md), reads the same names as the desktop app.
package loglevel

import (
	"fmt"
	"log/slog"
	"strings"
)

// Parse reads debug, info, warn (or warning) or error, in any case; an
// empty name is info.
func Parse(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not debug, info, warn or error", s)
}
