package sysproxy

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Manager sets and restores the system proxy through one backend and keeps
// the journal that makes the restore survive a crash. Its methods are safe
// for concurrent use; they are serialised.
type Manager struct {
	backend Backend // nil: nothing can be set here (Enable returns ErrUnsupported)
	path    string
	log     *slog.Logger

	mu      sync.Mutex
	journal *Journal   // what this Manager applied; nil while not enabled
	owner   *ownerLock // held while journal is set
}

// NewManager returns a Manager that keeps its journal at journalPath (the
// app keeps it beside config.json, named JournalName). b may be nil where Detect found no backend: Enable
// then returns ErrUnsupported, while Repair and Disable can still restore a
// journal left by another backend if that backend's tools are here.
func NewManager(b Backend, journalPath string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{backend: b, path: journalPath, log: log}
}

// Enabled reports whether this Manager has the system proxy set.
func (m *Manager) Enabled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.journal != nil
}

// Enable points the system proxy at addr (host:port; an unspecified host
// such as 0.0.0.0 becomes 127.0.0.1), with bypass entries as
// outbound.ParseBypass accepts them. It is idempotent: enabling again with
// the same settings does nothing, with other settings it restores first. A
// journal left by an earlier run is repaired first, so Porthole's own values
// are never journaled as the user's.
func (m *Manager) Enable(addr string, bypass []string) error {
	host, port, err := splitAddr(addr)
	if err != nil {
		return err
	}
	entries, err := cleanBypass(bypass)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.backend == nil {
		return fmt.Errorf("setting the system proxy: %w", ErrUnsupported)
	}
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if j := m.journal; j != nil {
		if j.Backend == m.backend.Name() && j.Addr == target && slices.Equal(j.Bypass, entries) {
			return nil
		}
		if err := m.restoreLocked(j, "system proxy restored before setting it again"); err != nil {
			return err
		}
	} else if _, err := m.repairLocked(); err != nil {
		return fmt.Errorf("setting the system proxy: %w", err)
	}
	if m.owner == nil {
		l, err := lockOwner(m.path)
		if err != nil {
			return fmt.Errorf("setting the system proxy: %w", err)
		}
		m.owner = l
	}
	// Held only while this Manager's journal is in effect.
	defer func() {
		if m.journal == nil {
			m.releaseOwner()
		}
	}()

	b := m.backend
	wanted, err := b.Wanted(host, port, entries)
	if err != nil {
		return fmt.Errorf("setting the system proxy (%s): %w", b.Name(), err)
	}
	keys := slices.Sorted(maps.Keys(wanted))
	prev, err := b.Read(keys)
	if err != nil {
		return fmt.Errorf("setting the system proxy (%s): reading the current settings: %w", b.Name(), err)
	}
	for _, k := range keys {
		if _, ok := prev[k]; !ok { // vanished between Wanted and Read: not ours to touch
			delete(wanted, k)
		}
	}
	if len(wanted) == 0 {
		return fmt.Errorf("setting the system proxy (%s): %w: no setting to change", b.Name(), ErrUnsupported)
	}
	j := &Journal{
		Version:  journalVersion,
		Backend:  b.Name(),
		Addr:     target,
		Bypass:   entries,
		PID:      pid(),
		Created:  time.Now().UTC().Truncate(time.Second),
		Previous: pick(prev, wanted),
		Ours:     wanted,
	}
	if err := writeJournal(m.path, j); err != nil {
		return fmt.Errorf("setting the system proxy: %w", err)
	}
	if err := b.Write(wanted); err != nil {
		err = fmt.Errorf("setting the system proxy (%s): %w", b.Name(), err)
		return m.rollback(b, j, err)
	}
	if err := m.settle(b, j); err != nil {
		return m.rollback(b, j, fmt.Errorf("setting the system proxy (%s): %w", b.Name(), err))
	}
	m.journal = j
	m.log.Info("system proxy set", "backend", b.Name(), "addr", target, "keys", len(j.Ours))
	return nil
}

// settle reads back what was written. A value the OS normalised becomes
// the one journaled as ours (so the restore recognises it); a value that is
// still the previous one means the write had no effect.
func (m *Manager) settle(b Backend, j *Journal) error {
	keys := slices.Sorted(maps.Keys(j.Ours))
	got, err := b.Read(keys)
	if err != nil {
		m.log.Warn("system proxy set but could not be read back", "backend", b.Name(), "err", err)
		return nil
	}
	changed := false
	for _, k := range keys {
		v, ok := got[k]
		if !ok || v == j.Ours[k] {
			continue
		}
		if v == j.Previous[k] {
			return fmt.Errorf("%w: %s is still %q after writing %q", ErrNotApplied, k, v, j.Ours[k])
		}
		m.log.Debug("system proxy value normalised by the system", "key", k, "wrote", j.Ours[k], "reads", v)
		j.Ours[k] = v
		changed = true
	}
	if changed {
		if err := writeJournal(m.path, j); err != nil {
			return err
		}
	}
	return nil
}

// rollback puts back what a failed Enable wrote and returns cause, joined
// with the rollback's own failure if any (the journal then stays for
// Disable or the next start's Repair).
func (m *Manager) rollback(b Backend, j *Journal, cause error) error {
	if _, _, err := m.restore(b, j); err != nil {
		m.log.Error("system proxy could not be put back after a failed change; it will be retried at the next start",
			"backend", b.Name(), "err", err)
		return errors.Join(cause, fmt.Errorf("putting the previous settings back: %w", err))
	}
	if err := removeJournal(m.path); err != nil {
		return errors.Join(cause, err)
	}
	m.log.Info("system proxy change failed and was rolled back", "backend", b.Name(), "err", cause)
	return cause
}

// Disable puts back the settings Enable replaced where they are still
// Porthole's, then removes the journal. Without a journal it does nothing;
// with one left by an earlier run (this Manager never enabled), it repairs
// it. If a restore write fails, the journal stays so a later Disable or the
// next start can finish the job.
func (m *Manager) Disable() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.journal == nil {
		_, err := m.repairLocked()
		return err
	}
	return m.restoreLocked(m.journal, "system proxy restored")
}

func (m *Manager) restoreLocked(j *Journal, msg string) error {
	b, err := m.backendFor(j.Backend)
	if err != nil {
		return fmt.Errorf("restoring the system proxy: %w", err)
	}
	restored, left, err := m.restore(b, j)
	if err != nil {
		return fmt.Errorf("restoring the system proxy (%s): %w", b.Name(), err)
	}
	if err := removeJournal(m.path); err != nil {
		return fmt.Errorf("restoring the system proxy: %w", err)
	}
	m.journal = nil
	m.releaseOwner()
	m.log.Info(msg, "backend", b.Name(), "restored", describe(restored, j.Previous), "left_alone", len(left))
	return nil
}

// releaseOwner drops the journal's lock once this Manager's journal is no
// longer in effect.
func (m *Manager) releaseOwner() {
	if err := m.owner.release(); err != nil {
		m.log.Warn("releasing the system proxy journal lock", "err", err)
	}
	m.owner = nil
}

// Repair restores a journal left behind by a run that did not disable the
// system proxy (crash, SIGKILL, power loss) and removes it, logging one INFO
// line with what was put back. It reports whether there was a journal. A
// journal that cannot be read is moved aside (path.broken-TIMESTAMP) and
// reported with ErrJournalCorrupt. Call it at start, before Enable; while
// this Manager itself has the proxy enabled it does nothing.
func (m *Manager) Repair() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.journal != nil {
		return false, nil
	}
	return m.repairLocked()
}

func (m *Manager) repairLocked() (bool, error) {
	if _, err := os.Stat(m.path); errors.Is(err, fs.ErrNotExist) {
		return false, nil // nothing to repair: no lock file made either
	}
	if m.owner == nil {
		l, err := lockOwner(m.path)
		if errors.Is(err, ErrBusy) {
			// A running Porthole's proxy is in use, not left behind.
			pid := 0
			if j, jerr := ReadJournal(m.path); jerr == nil && j != nil {
				pid = j.PID
			}
			m.log.Info("the system proxy is set by another running Porthole; left as it is", "pid", pid)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		defer func() {
			if err := l.release(); err != nil {
				m.log.Warn("releasing the system proxy journal lock", "err", err)
			}
		}()
	}
	j, err := ReadJournal(m.path)
	if errors.Is(err, ErrJournalCorrupt) {
		aside, aerr := setAside(m.path)
		if aerr != nil {
			return true, fmt.Errorf("%w (and it could not be set aside: %w)", err, aerr)
		}
		m.log.Warn("system proxy journal was unreadable and has been set aside; check the system proxy settings by hand",
			"journal", aside, "err", err)
		return true, fmt.Errorf("%w; it was moved to %s: check the system proxy settings by hand", err, aside)
	}
	if err != nil || j == nil {
		return false, err
	}
	b, err := m.backendFor(j.Backend)
	if err != nil {
		return true, fmt.Errorf("repairing the system proxy left set by process %d: %w (the journal %s is kept)", j.PID, err, m.path)
	}
	restored, left, err := m.restore(b, j)
	if err != nil {
		return true, fmt.Errorf("repairing the system proxy left set by process %d (%s): %w", j.PID, b.Name(), err)
	}
	if err := removeJournal(m.path); err != nil {
		return true, fmt.Errorf("repairing the system proxy: %w", err)
	}
	m.log.Info("system proxy left set by an earlier run was put back",
		"backend", b.Name(), "pid", j.PID, "since", j.Created.Format(time.RFC3339),
		"restored", describe(restored, j.Previous), "left_alone", len(left))
	return true, nil
}

// restore writes the previous value of every key whose current value is
// still ours. It returns the keys restored (or already back) and those left
// alone because someone else changed them.
func (m *Manager) restore(b Backend, j *Journal) (restored, left []string, err error) {
	keys := slices.Sorted(maps.Keys(j.Ours))
	cur, err := b.Read(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the current settings: %w", err)
	}
	write := make(map[string]string)
	for _, k := range keys {
		c, ok := cur[k]
		switch {
		case !ok:
			m.log.Info("system proxy key left alone: it no longer exists", "backend", b.Name(), "key", k)
			left = append(left, k)
		case c == j.Previous[k]:
			restored = append(restored, k) // never changed, or already put back
		case c == j.Ours[k]:
			write[k] = j.Previous[k]
			restored = append(restored, k)
		default:
			m.log.Info("system proxy key left alone: it was changed after Porthole set it",
				"backend", b.Name(), "key", k, "now", c, "porthole_set", j.Ours[k], "before", j.Previous[k])
			left = append(left, k)
		}
	}
	if len(write) > 0 {
		if err := b.Write(write); err != nil {
			return nil, nil, err
		}
	}
	return restored, left, nil
}

// backendFor is the backend that can restore a journal written by name:
// the Manager's own, or another one whose tools are present here.
func (m *Manager) backendFor(name string) (Backend, error) {
	if m.backend != nil && m.backend.Name() == name {
		return m.backend, nil
	}
	return backendByName(name, m.log)
}

// describe renders restored keys with the value they now have, for the log.
func describe(keys []string, prev map[string]string) string {
	if len(keys) == 0 {
		return "nothing"
	}
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "%s=%s", k, prev[k])
	}
	return sb.String()
}

func pick(from, keysOf map[string]string) map[string]string {
	out := make(map[string]string, len(keysOf))
	for k := range keysOf {
		out[k] = from[k]
	}
	return out
}
