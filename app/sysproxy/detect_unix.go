//go:build !windows && !darwin

package sysproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Detect returns the backend for this desktop: KDE Plasma (kioslaverc,
// together with gsettings when it is there too, which GTK programs and
// Firefox read on Plasma), else GNOME-like (gsettings with the
// org.gnome.system.proxy schema). Without either it returns an error
// wrapping ErrUnsupported that says what was looked for.
func Detect(log *slog.Logger) (Backend, error) {
	return detectUnix(os.Getenv("XDG_CURRENT_DESKTOP"), log)
}

func detectUnix(desktop string, log *slog.Logger) (Backend, error) {
	if log == nil {
		log = slog.Default()
	}
	g, gerr := newGnome()
	var kerr error
	if isKDE(desktop) {
		k, err := newKDE(log.Debug)
		if err == nil {
			if gerr == nil {
				return multi{k, g}, nil
			}
			return k, nil
		}
		kerr = err
	}
	if gerr == nil {
		return g, nil
	}
	if desktop == "" {
		desktop = "unknown"
	}
	return nil, fmt.Errorf("%w (desktop %s: %w)", ErrUnsupported, desktop, errors.Join(kerr, gerr))
}

// isKDE reports whether XDG_CURRENT_DESKTOP (a colon-separated list) names
// KDE.
func isKDE(desktop string) bool {
	for d := range strings.SplitSeq(desktop, ":") {
		if strings.EqualFold(strings.TrimSpace(d), "KDE") {
			return true
		}
	}
	return false
}

func oneBackend(name string, log *slog.Logger) (Backend, error) {
	switch name {
	case "gnome":
		return backendOrErr(newGnome())
	case "kde":
		return backendOrErr(newKDE(log.Debug))
	}
	return nil, fmt.Errorf("%w: %q", errOtherBackend, name)
}
