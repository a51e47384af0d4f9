package autostart

import (
	"errors"
	"testing"
)

// memStore is a store in memory that counts writes and removes; kindErr
// simulates an entry of the wrong kind (symlink, registry type).
type memStore struct {
	content  string
	found    bool
	kindErr  error
	readErr  error
	writeErr error
	writes   int
	removes  int
}

func (m *memStore) Location() string { return "mem" }

func (m *memStore) Read() (string, bool, error) {
	if m.kindErr != nil {
		return "", true, m.kindErr
	}
	if m.readErr != nil {
		return "", false, m.readErr
	}
	return m.content, m.found, nil
}

func (m *memStore) Write(c string) error {
	if m.writeErr != nil {
		return m.writeErr
	}
	m.content, m.found = c, true
	m.writes++
	return nil
}

func (m *memStore) Remove() error {
	m.content, m.found = "", false
	m.removes++
	return nil
}

var formats = map[string]format{"desktop": desktopFormat, "plist": plistFormat, "windows": runFormat}

func TestLogic(t *testing.T) {
	const exe = "/opt/Porthole App/porthole"
	for name, f := range formats {
		t.Run(name, func(t *testing.T) {
			m := &memStore{}
			if on, err := enabled(m, f); on || err != nil {
				t.Fatalf("enabled on empty = %v, %v", on, err)
			}
			if err := disable(m, f); err != nil || m.removes != 0 {
				t.Fatalf("disable on empty = %v, removes %d", err, m.removes)
			}
			if err := enable(m, f, exe, nil); err != nil {
				t.Fatal(err)
			}
			want, err := f.render(exe, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.content != want || m.writes != 1 {
				t.Fatalf("after enable: writes %d, content %q", m.writes, m.content)
			}
			// Idempotent: the same command writes nothing.
			if err := enable(m, f, exe, nil); err != nil || m.writes != 1 {
				t.Fatalf("second enable = %v, writes %d", err, m.writes)
			}
			if on, err := enabled(m, f); !on || err != nil {
				t.Fatalf("enabled = %v, %v", on, err)
			}
			// Our entry for another command (binary moved) is replaced.
			if err := enable(m, f, "/usr/local/bin/porthole", []string{"--tray"}); err != nil || m.writes != 2 {
				t.Fatalf("enable with a new path = %v, writes %d", err, m.writes)
			}
			if err := disable(m, f); err != nil || m.found || m.removes != 1 {
				t.Fatalf("disable = %v, found %v, removes %d", err, m.found, m.removes)
			}
			if err := disable(m, f); err != nil || m.removes != 1 {
				t.Fatalf("second disable = %v, removes %d", err, m.removes)
			}

			// Edited by the user: left alone by everything.
			edited := want + " "
			m = &memStore{content: edited, found: true}
			if err := disable(m, f); !errors.Is(err, ErrNotOurs) {
				t.Errorf("disable of an edited entry: %v, want ErrNotOurs", err)
			}
			if err := enable(m, f, exe, nil); !errors.Is(err, ErrNotOurs) {
				t.Errorf("enable over an edited entry: %v, want ErrNotOurs", err)
			}
			if on, err := enabled(m, f); !on || !errors.Is(err, ErrNotOurs) {
				t.Errorf("enabled with an edited entry = %v, %v; want true, ErrNotOurs", on, err)
			}
			if m.content != edited || m.writes != 0 || m.removes != 0 {
				t.Errorf("edited entry touched: writes %d, removes %d", m.writes, m.removes)
			}

			// Wrong kind (symlink, other registry type): left alone.
			kind := errors.Join(ErrNotOurs, errors.New("a symlink"))
			m = &memStore{kindErr: kind}
			for _, err := range []error{disable(m, f), enable(m, f, exe, nil)} {
				if !errors.Is(err, ErrNotOurs) {
					t.Errorf("wrong kind: %v, want ErrNotOurs", err)
				}
			}
			if on, err := enabled(m, f); !on || !errors.Is(err, ErrNotOurs) {
				t.Errorf("enabled with wrong kind = %v, %v", on, err)
			}
			if m.writes != 0 || m.removes != 0 {
				t.Errorf("wrong-kind entry touched: writes %d, removes %d", m.writes, m.removes)
			}

			// Store errors come through, wrapped.
			boom := errors.New("boom")
			m = &memStore{readErr: boom}
			for _, err := range []error{disable(m, f), enable(m, f, exe, nil)} {
				if !errors.Is(err, boom) || errors.Is(err, ErrNotOurs) {
					t.Errorf("read error: %v, want boom", err)
				}
			}
			if _, err := enabled(m, f); !errors.Is(err, boom) {
				t.Errorf("enabled read error: %v", err)
			}
			m = &memStore{writeErr: boom}
			if err := enable(m, f, exe, nil); !errors.Is(err, boom) {
				t.Errorf("write error: %v", err)
			}

			// Bad commands are refused before anything is read or written.
			m = &memStore{}
			for _, bad := range []string{"relative/porthole", "/opt/a\nb"} {
				if err := enable(m, f, bad, nil); !errors.Is(err, ErrInvalidCommand) {
					t.Errorf("enable(%q): %v, want ErrInvalidCommand", bad, err)
				}
			}
			if m.writes != 0 {
				t.Errorf("bad command written")
			}
		})
	}
}
