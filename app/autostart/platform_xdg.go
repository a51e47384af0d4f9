//go:build !darwin && !windows

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// DesktopFileName is the name of Porthole's XDG autostart entry.
const DesktopFileName = "porthole.desktop"

// platform is the XDG autostart entry:
// $XDG_CONFIG_HOME/autostart/porthole.desktop.
func platform() (store, format, error) {
	dir, err := xdgConfigHome()
	if err != nil {
		return nil, format{}, err
	}
	return fileStore{path: filepath.Join(dir, "autostart", DesktopFileName)}, desktopFormat, nil
}

// xdgConfigHome is $XDG_CONFIG_HOME, or ~/.config when it is unset or
// relative (the Base Directory spec says to ignore a relative one).
func xdgConfigHome() (string, error) {
	if dir := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the autostart directory: %w", err)
	}
	return filepath.Join(home, ".config"), nil
}
