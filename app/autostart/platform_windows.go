package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// runKey is the per-user Run key, relative to HKEY_CURRENT_USER.
const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// platform is the value RunValueName under HKCU\...\Run.
func platform() (store, format, error) {
	return registryStore{}, runFormat, nil
}

// registryStore keeps the entry in a REG_SZ value of the Run key. Setting a
// registry value is atomic.
type registryStore struct{}

func (registryStore) Location() string {
	return `HKEY_CURRENT_USER\` + runKey + `\` + RunValueName
}

func (s registryStore) Read() (string, bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("opening %s: %w", runKey, err)
	}
	v, typ, err := k.GetStringValue(RunValueName)
	if cerr := k.Close(); cerr != nil && err == nil {
		return "", false, fmt.Errorf("closing %s: %w", runKey, cerr)
	}
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if errors.Is(err, registry.ErrUnexpectedType) {
		return "", true, fmt.Errorf("%s: %w (not a string value; left as it is)", s.Location(), ErrNotOurs)
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", s.Location(), err)
	}
	if typ != registry.SZ {
		return "", true, fmt.Errorf("%s: %w (of type %d, not REG_SZ; left as it is)", s.Location(), ErrNotOurs, typ)
	}
	return v, true, nil
}

func (s registryStore) Write(content string) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("opening %s: %w", runKey, err)
	}
	err = k.SetStringValue(RunValueName, content)
	if err := errors.Join(err, k.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", s.Location(), err)
	}
	return nil
}

func (s registryStore) Remove() error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", runKey, err)
	}
	err = k.DeleteValue(RunValueName)
	if errors.Is(err, registry.ErrNotExist) {
		err = nil
	}
	if err := errors.Join(err, k.Close()); err != nil {
		return fmt.Errorf("removing %s: %w", s.Location(), err)
	}
	return nil
}
