package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// pathAddress is a socket file in a directory only this user can enter.
func pathAddress(key string) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("single instance: %w", err)
	}
	dir = filepath.Join(dir, "porthole")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("single instance: %w", err)
	}
	return filepath.Join(dir, name(key)+".sock"), nil
}

// removeStaleFile removes a socket file nobody listens on (a run that was
// killed); one that answered wrongly or slowly is left alone. Two launches
// that both find the same stale file can both remove it and both run: a
// rare race (a crash, then two starts within milliseconds) that costs a
// second tray icon, not a lost setting.
func removeStaleFile(addr string, askErr error) bool {
	if !isRefused(askErr) && !errors.Is(askErr, fs.ErrNotExist) {
		return false
	}
	err := os.Remove(addr)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}
