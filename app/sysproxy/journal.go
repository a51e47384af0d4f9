package sysproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"porthole/app/internal/atomicfile"
)

// JournalName is the journal's file name, kept beside config.json.
const JournalName = "sysproxy-journal.json"

const journalVersion = 1

// Journal is what Enable records before it changes anything: which backend,
// the value of every key before, and the value Porthole wrote. It is the
// file format of the journal (JSON).
type Journal struct {
	Version  int               `json:"version"`
	Backend  string            `json:"backend"`
	Addr     string            `json:"addr"`   // host:port the proxy was pointed at
	Bypass   []string          `json:"bypass"` // as given to Enable, cleaned
	PID      int               `json:"pid"`    // the process that wrote it
	Created  time.Time         `json:"created"`
	Previous map[string]string `json:"previous"` // key → value before Enable
	Ours     map[string]string `json:"ours"`     // key → value Porthole wrote
}

// ReadJournal reads the journal at path: (nil, nil) if there is none, an
// error wrapping ErrJournalCorrupt if it is not a journal this version can
// use. It changes nothing.
func ReadJournal(path string) (*Journal, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the system proxy journal: %w", err)
	}
	var j Journal
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrJournalCorrupt, path, err)
	}
	if err := j.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrJournalCorrupt, path, err)
	}
	return &j, nil
}

func (j *Journal) check() error {
	switch {
	case j.Version != journalVersion:
		return fmt.Errorf("version %d, want %d", j.Version, journalVersion)
	case j.Backend == "":
		return errors.New("no backend")
	case len(j.Ours) == 0:
		return errors.New("no settings recorded")
	}
	for k := range j.Ours {
		if _, ok := j.Previous[k]; !ok {
			return fmt.Errorf("no previous value for %q", k)
		}
	}
	return nil
}

// writeJournal writes j atomically: a temporary file in the same directory
// (mode 0600), fsync, rename over path, then an fsync of the directory so
// the rename itself survives a power loss.
func writeJournal(path string, j *Journal) error {
	if err := atomicfile.WriteJSON(path, j, 0o600, 0o700); err != nil {
		return fmt.Errorf("writing the system proxy journal: %w", err)
	}
	return nil
}

func removeJournal(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the system proxy journal: %w", err)
	}
	return nil
}

// setAside renames an unreadable journal to path.broken-TIMESTAMP so it is
// neither used nor silently lost.
func setAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.broken-%s", path, time.Now().Format("20060102-150405.000"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("setting the journal aside: %w", err)
	}
	return aside, nil
}

func pid() int { return os.Getpid() }
