package autostart

import (
	"fmt"
	"os"
	"path/filepath"
)

// platform is the LaunchAgent ~/Library/LaunchAgents/<LaunchAgentLabel>.plist.
// launchd loads it at the next login (RunAtLoad). Enable does not run
// `launchctl bootstrap` (that would start a second Porthole now), and Disable
// does not run `launchctl bootout` (that would stop the running Porthole if
// launchd started it); removing the file is enough for the next login.
func platform() (store, format, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, format{}, fmt.Errorf("finding the LaunchAgents directory: %w", err)
	}
	path := filepath.Join(home, "Library", "LaunchAgents", LaunchAgentLabel+".plist")
	return fileStore{path: path}, plistFormat, nil
}
