package sysproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"porthole/core/outbound"
	"porthole/internal/filetest"
)

var errFakeWrite = errors.New("fake backend: the settings store is read-only")

// fakeBackend is a settings store in memory that records every call. It
// is a Backend for the Manager's own logic; the real backends are tested
// against real gsettings and kwriteconfig.
type fakeBackend struct {
	name    string
	journal string // path checked at every Write

	mu             sync.Mutex
	values         map[string]string
	writes         []string // "key=value" in order
	reads          int
	journalAtWrite []bool
	failAt         int  // fail the Nth key write (1-based); 0: never
	failFrom       bool // with failAt: every write from the Nth on fails
	ignoreWrites   bool // accept writes and change nothing
	upper          bool // store values upper-cased (a system that normalises)
	gone           map[string]bool
}

func newFake(journal string) *fakeBackend {
	return &fakeBackend{
		name:    "fake",
		journal: journal,
		values: map[string]string{
			"mode":   "manual",
			"host":   "corp-proxy",
			"port":   "3128",
			"bypass": "intranet",
			"other":  "untouched",
		},
		gone: map[string]bool{},
	}
}

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) Wanted(host string, port int, bypass []string) (map[string]string, error) {
	return map[string]string{
		"mode":   "proxy",
		"host":   host,
		"port":   strconv.Itoa(port),
		"bypass": strings.Join(bypass, ","),
	}, nil
}

func (f *fakeBackend) Read(keys []string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := make(map[string]string)
	for _, k := range keys {
		if !f.gone[k] {
			out[k] = f.values[k]
		}
	}
	return out, nil
}

func (f *fakeBackend) Write(values map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := os.Stat(f.journal)
	f.journalAtWrite = append(f.journalAtWrite, err == nil)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		n := len(f.writes) + 1
		if f.failAt > 0 && (n == f.failAt || f.failFrom && n > f.failAt) {
			f.writes = append(f.writes, "FAILED "+k)
			return fmt.Errorf("writing %s: %w", k, errFakeWrite)
		}
		f.writes = append(f.writes, k+"="+values[k])
		if f.ignoreWrites {
			continue
		}
		v := values[k]
		if f.upper {
			v = strings.ToUpper(v)
		}
		f.values[k] = v
	}
	return nil
}

func (f *fakeBackend) snapshot() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.values)
}

func (f *fakeBackend) set(k, v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[k] = v
}

func (f *fakeBackend) writeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes)
}

// logBuf collects a logger's lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines that contain every one of words.
func (l *logBuf) lines(words ...string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func newLog() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return b.logger(), b
}

// logger is a DEBUG logger writing to b.
func (b *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeJournal is a fake backend with the user's own settings whose
// journal is at path, in a directory of the test's.
func fakeJournal(t *testing.T) (path string, f *fakeBackend) {
	path = journalPath(t)
	return path, newFake(path)
}

func journalPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "porthole", JournalName)
}

// enabledManager is a Manager over a fake backend (journal at path, log
// in logs) that has set the proxy to 127.0.0.1:8088 with no bypass.
func enabledManager(t *testing.T) (m *Manager, f *fakeBackend, path string, logs *logBuf) {
	t.Helper()
	path = journalPath(t)
	f = newFake(path)
	log, logs := newLog()
	m = NewManager(f, path, log)
	if err := m.Enable("127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	return m, f, path, logs
}

// disableRestores disables m and fails the test unless f's settings are
// then before again.
func disableRestores(t *testing.T, m *Manager, f *fakeBackend, before map[string]string) {
	t.Helper()
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := f.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("after Disable: %v, want %v", got, before)
	}
}

// mustReadJournal is the journal at path; the test fails if it cannot be
// read.
func mustReadJournal(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var defaultBypassJoined = strings.Join(outbound.DefaultBypass, ",")

func TestEnableJournalsFirstAndDisableRestores(t *testing.T) {
	path, f := fakeJournal(t)
	before := f.snapshot()
	log, _ := newLog()
	m := NewManager(f, path, log)

	if err := m.Enable("127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	if !m.Enabled() {
		t.Fatal("Enabled() = false after Enable")
	}
	if len(f.journalAtWrite) == 0 || !f.journalAtWrite[0] {
		t.Fatalf("the journal did not exist at the first Write: %v", f.journalAtWrite)
	}
	want := map[string]string{"mode": "proxy", "host": "127.0.0.1", "port": "8088", "bypass": defaultBypassJoined, "other": "untouched"}
	if got := f.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("after Enable: %v, want %v", got, want)
	}
	filetest.Mode(t, path, 0o600)
	j := mustReadJournal(t, path)
	if j.Backend != "fake" || j.Addr != "127.0.0.1:8088" || j.PID != os.Getpid() ||
		j.Previous["host"] != "corp-proxy" || j.Ours["host"] != "127.0.0.1" || len(j.Ours) != 4 {
		t.Fatalf("journal: %+v", j)
	}
	if _, ok := j.Previous["other"]; ok {
		t.Error("the journal records a key Porthole does not touch")
	}

	disableRestores(t, m, f, before)
	if m.Enabled() {
		t.Fatal("Enabled() = true after Disable")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("journal still there after Disable: %v", err)
	}
}

func TestEnableAndDisableAreIdempotent(t *testing.T) {
	path, f := fakeJournal(t)
	before := f.snapshot()
	m := NewManager(f, path, nil)

	if err := m.Enable("127.0.0.1:8088", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	n := f.writeCount()
	if err := m.Enable("127.0.0.1:8088", []string{" LOCALHOST "}); err != nil {
		t.Fatal(err)
	}
	if f.writeCount() != n {
		t.Fatalf("a second identical Enable wrote: %v", f.writes[n:])
	}

	// Other settings: restored, then set anew, and the journal still holds
	// the user's values, never Porthole's first ones.
	if err := m.Enable("127.0.0.1:9099", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if got := f.snapshot()["port"]; got != "9099" {
		t.Fatalf("port %q after re-Enable", got)
	}
	j := mustReadJournal(t, path)
	if !maps.Equal(j.Previous, pick(before, j.Previous)) {
		t.Fatalf("journal previous %v, want the user's %v", j.Previous, before)
	}

	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	n = f.writeCount()
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if f.writeCount() != n {
		t.Fatalf("a second Disable wrote: %v", f.writes[n:])
	}
	if got := f.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("after Disable: %v, want %v", got, before)
	}
}

func TestDisableLeavesWhatOthersChanged(t *testing.T) {
	m, f, path, logs := enabledManager(t)
	f.set("host", "users-new-proxy") // the user changed it meanwhile
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	got := f.snapshot()
	if got["host"] != "users-new-proxy" {
		t.Fatalf("host %q: the user's change was overwritten", got["host"])
	}
	if got["mode"] != "manual" || got["port"] != "3128" || got["bypass"] != "intranet" {
		t.Fatalf("the other keys were not restored: %v", got)
	}
	if l := logs.lines("level=INFO", "left alone", "key=host", "users-new-proxy"); len(l) != 1 {
		t.Fatalf("want one INFO line about the host left alone, log:\n%s", logs)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal kept")
	}
}

func TestDisableSkipsKeysThatNoLongerExist(t *testing.T) {
	m, f, _, logs := enabledManager(t)
	f.mu.Lock()
	f.gone["bypass"] = true // e.g. a network service removed meanwhile
	f.mu.Unlock()
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := f.snapshot(); got["host"] != "corp-proxy" || got["mode"] != "manual" {
		t.Fatalf("not restored: %v", got)
	}
	if len(logs.lines("level=INFO", "no longer exists", "key=bypass")) != 1 {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestFailedWriteRollsBack(t *testing.T) {
	path, f := fakeJournal(t)
	f.failAt = 3 // bypass and host written, then the third key fails
	before := f.snapshot()
	log, logs := newLog()
	m := NewManager(f, path, log)

	err := m.Enable("127.0.0.1:8088", nil)
	if !errors.Is(err, errFakeWrite) {
		t.Fatalf("Enable: %v, want the backend's error", err)
	}
	if !strings.Contains(err.Error(), "read-only") {
		t.Errorf("the error does not carry the backend's words: %v", err)
	}
	if got := f.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("after the failed Enable: %v, want the previous %v (writes %v)", got, before, f.writes)
	}
	if m.Enabled() {
		t.Fatal("Enabled() after a failed Enable")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal kept after a complete rollback")
	}
	if len(logs.lines("rolled back")) != 1 {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestFailedRollbackKeepsJournalForRepair(t *testing.T) {
	path, f := fakeJournal(t)
	f.failAt, f.failFrom = 3, true // the store breaks for good at the 3rd write
	before := f.snapshot()
	m := NewManager(f, path, nil)

	err := m.Enable("127.0.0.1:8088", nil)
	if !errors.Is(err, errFakeWrite) || !strings.Contains(err.Error(), "putting the previous settings back") {
		t.Fatalf("Enable: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("journal gone although the rollback failed: %v", err)
	}

	f.mu.Lock()
	f.failAt = 0 // the store works again, e.g. at the next start
	f.mu.Unlock()
	repaired, err := NewManager(f, path, nil).Repair()
	if err != nil || !repaired {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
	if got := f.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("after Repair: %v, want %v", got, before)
	}
}

func TestRepairRestoresJournalLeftBehind(t *testing.T) {
	path, f := fakeJournal(t)
	before := f.snapshot()
	if err := enableThenCrash(NewManager(f, path, nil), "127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	// That Manager is gone without Disable, as in a crash.

	log, logs := newLog()
	m := NewManager(f, path, log)
	repaired, err := m.Repair()
	if err != nil || !repaired {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
	if got := f.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("after Repair: %v, want %v", got, before)
	}
	info := logs.lines("level=INFO")
	if len(info) != 1 || !strings.Contains(info[0], "put back") || !strings.Contains(info[0], "host=corp-proxy") {
		t.Fatalf("want one INFO line saying what was put back, log:\n%s", logs)
	}
	if repaired, err := m.Repair(); repaired || err != nil {
		t.Fatalf("second Repair: %v, %v", repaired, err)
	}
}

func TestEnableRepairsAJournalLeftBehindFirst(t *testing.T) {
	path, f := fakeJournal(t)
	before := f.snapshot()
	if err := enableThenCrash(NewManager(f, path, nil), "127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	m := NewManager(f, path, nil)
	if err := m.Enable("127.0.0.1:9000", nil); err != nil {
		t.Fatal(err)
	}
	j := mustReadJournal(t, path)
	if j.Previous["host"] != "corp-proxy" || j.Previous["mode"] != "manual" {
		t.Fatalf("Porthole's own values were journaled as the user's: %v", j.Previous)
	}
	disableRestores(t, m, f, before)
}

func TestCorruptJournalIsSetAside(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":      "{\"version\": 1, \"backend\": \"fa",
		"no previous":   `{"version":1,"backend":"fake","ours":{"host":"127.0.0.1"},"previous":{}}`,
		"other version": `{"version":99,"backend":"fake","ours":{"host":"x"},"previous":{"host":"y"}}`,
		"empty":         "",
	} {
		t.Run(name, func(t *testing.T) {
			path := journalPath(t)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFake(path)
			before := f.snapshot()
			log, logs := newLog()
			m := NewManager(f, path, log)

			repaired, err := m.Repair()
			if !errors.Is(err, ErrJournalCorrupt) || !repaired {
				t.Fatalf("Repair: %v, %v; want ErrJournalCorrupt", repaired, err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("the corrupt journal is still in place")
			}
			aside, _ := filepath.Glob(path + ".broken-*")
			if len(aside) != 1 {
				t.Fatalf("set-aside files: %v", aside)
			}
			if data, err := os.ReadFile(aside[0]); err != nil || string(data) != content {
				t.Fatalf("set-aside content %q, %v", data, err)
			}
			if len(logs.lines("level=WARN", "set aside")) != 1 {
				t.Fatalf("log:\n%s", logs)
			}
			if got := f.snapshot(); !maps.Equal(got, before) || f.writeCount() != 0 {
				t.Fatalf("settings touched: %v, writes %v", got, f.writes)
			}
			// The next start finds nothing; enabling works again.
			if repaired, err := m.Repair(); repaired || err != nil {
				t.Fatalf("second Repair: %v, %v", repaired, err)
			}
			if err := m.Enable("127.0.0.1:8088", nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEnableWithCorruptJournalChangesNothing(t *testing.T) {
	path := journalPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(path)
	m := NewManager(f, path, nil)
	if err := m.Enable("127.0.0.1:8088", nil); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("Enable: %v", err)
	}
	if f.writeCount() != 0 || m.Enabled() {
		t.Fatal("Enable went on over an unreadable journal")
	}
}

func TestJournalOfAnUnavailableBackendIsKept(t *testing.T) {
	path, f := fakeJournal(t)
	if err := enableThenCrash(NewManager(f, path, nil), "127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	f2 := newFake(path)
	f2.name = "another"
	_, err := NewManager(f2, path, nil).Repair()
	if !errors.Is(err, errOtherBackend) {
		t.Fatalf("Repair: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("the journal was dropped although nothing was restored")
	}
	if _, err := NewManager(nil, path, nil).Repair(); !errors.Is(err, errOtherBackend) {
		t.Fatalf("Repair without a backend: %v", err)
	}
}

func TestWriteWithoutEffectIsAnError(t *testing.T) {
	path, f := fakeJournal(t)
	f.ignoreWrites = true
	err := enableThenCrash(NewManager(f, path, nil), "127.0.0.1:8088", nil)
	if !errors.Is(err, ErrNotApplied) {
		t.Fatalf("Enable: %v, want ErrNotApplied", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal kept")
	}
}

func TestNormalisedValuesAreJournaledAsRead(t *testing.T) {
	path, f := fakeJournal(t)
	f.upper = true // the system stores what it is given in its own form
	before := f.snapshot()
	m := NewManager(f, path, nil)
	if err := m.Enable("127.0.0.1:8088", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	j := mustReadJournal(t, path)
	if j.Ours["bypass"] != "LOCALHOST" || j.Ours["mode"] != "PROXY" {
		t.Fatalf("journal ours %v, want the values as read back", j.Ours)
	}
	f.mu.Lock()
	f.upper = false
	f.mu.Unlock()
	disableRestores(t, m, f, before)
}

func TestBadInputIsRejectedBeforeAnything(t *testing.T) {
	path, f := fakeJournal(t)
	m := NewManager(f, path, nil)
	for _, c := range []struct {
		addr   string
		bypass []string
		names  string
	}{
		{"127.0.0.1:8088", []string{"localhost", "not a host!"}, `"not a host!"`},
		{"127.0.0.1:8088", []string{"10.0.0.0/33"}, `"10.0.0.0/33"`},
		{"127.0.0.1:8088", []string{"a;b"}, `"a;b"`},
		{"127.0.0.1", nil, `"127.0.0.1"`},
		{"127.0.0.1:0", nil, `"0"`},
		{"bad host:8088", nil, `"bad host"`},
	} {
		err := m.Enable(c.addr, c.bypass)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("Enable(%q, %q): %v; want ErrInvalid naming %s", c.addr, c.bypass, err, c.names)
		}
	}
	if f.writeCount() != 0 || f.reads != 0 {
		t.Fatal("bad input reached the backend")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal written for bad input")
	}
}

func TestUnspecifiedListenAddressPointsAtLoopback(t *testing.T) {
	path, f := fakeJournal(t)
	m := NewManager(f, path, nil)
	if err := m.Enable("0.0.0.0:8088", []string{"[::1]", "*.LOCAL", "example.com."}); err != nil {
		t.Fatal(err)
	}
	got := f.snapshot()
	if got["host"] != "127.0.0.1" || got["bypass"] != "::1,*.local,example.com" {
		t.Fatalf("got %v", got)
	}
}

func TestNoBackendIsUnsupported(t *testing.T) {
	m := NewManager(nil, journalPath(t), nil)
	err := m.Enable("127.0.0.1:8088", nil)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "terminal") {
		t.Fatalf("Enable: %v", err)
	}
	if err := m.Disable(); err != nil {
		t.Fatalf("Disable without anything to restore: %v", err)
	}
	if repaired, err := m.Repair(); repaired || err != nil {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
}

func TestMultiBackend(t *testing.T) {
	path := journalPath(t)
	a, b := newFake(path), newFake(path)
	a.name, b.name = "a", "b"
	before := b.snapshot()
	m := NewManager(multi{a, b}, path, nil)
	if err := m.Enable("127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	j := mustReadJournal(t, path)
	if j.Backend != "a+b" || j.Ours["a:host"] != "127.0.0.1" || j.Ours["b:port"] != "8088" || len(j.Ours) != 8 {
		t.Fatalf("journal %+v", j)
	}
	b.set("mode", "theirs")
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := a.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("a after Disable: %v", got)
	}
	if got := b.snapshot(); got["mode"] != "theirs" || got["host"] != "corp-proxy" {
		t.Fatalf("b after Disable: %v", got)
	}

	// A failure in the second backend rolls back the first.
	b.failAt = b.writeCount() + 2
	if err := m.Enable("127.0.0.1:8088", nil); !errors.Is(err, errFakeWrite) {
		t.Fatalf("Enable: %v", err)
	}
	if got := a.snapshot(); !maps.Equal(got, before) {
		t.Fatalf("a after the failed Enable: %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	path, f := fakeJournal(t)
	before := f.snapshot()
	m := NewManager(f, path, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for range 4 {
				var err error
				if i%2 == 0 {
					err = m.Enable("127.0.0.1:8088", nil)
				} else {
					err = m.Disable()
				}
				if err != nil {
					errs <- err
				}
				_ = m.Enabled()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	disableRestores(t, m, f, before)
}

func TestJournalFileFormat(t *testing.T) {
	path, f := fakeJournal(t)
	if err := enableThenCrash(NewManager(f, path, nil), "127.0.0.1:8088", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "backend", "addr", "bypass", "pid", "created", "previous", "ours"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("journal has no %q: %s", k, data)
		}
	}
	// The journal and its lock file (kept: removing it would race with a
	// process opening it), nothing else.
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{filepath.Base(path), filepath.Base(path) + ".lock"}; !slices.Equal(names, want) {
		t.Errorf("files beside the journal: %v, want %v", names, want)
	}
}

// Two Porthole processes: the one that set the system proxy holds the
// journal's lock; the other's start-up repair leaves that journal and the
// proxy alone, and its Enable is refused with ErrBusy. Once the first
// restores, the second may set it. (Two Managers in one process behave as
// two processes: the lock is per open file.)
func TestRunningOwnersJournalIsNotRepaired(t *testing.T) {
	first, fb, path, buf := enabledManager(t)
	set := fb.snapshot()

	second := NewManager(fb, path, buf.logger())
	if repaired, err := second.Repair(); repaired || err != nil {
		t.Fatalf("Repair of a running owner's journal = %v, %v; want false, nil", repaired, err)
	}
	if !maps.Equal(fb.snapshot(), set) {
		t.Fatalf("the second process changed the running one's proxy: %v, was %v", fb.snapshot(), set)
	}
	if len(buf.lines("another running Porthole")) != 1 {
		t.Errorf("want one log line about the running owner; log:\n%s", buf)
	}
	if err := second.Enable("127.0.0.1:9099", nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Enable = %v, want ErrBusy", err)
	}
	if err := second.Disable(); err != nil {
		t.Fatalf("second Disable: %v", err)
	}
	if !maps.Equal(fb.snapshot(), set) {
		t.Fatal("the second's Disable touched the running one's proxy")
	}

	if err := first.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := second.Enable("127.0.0.1:9099", nil); err != nil {
		t.Fatalf("Enable after the first restored: %v", err)
	}
	if err := second.Disable(); err != nil {
		t.Fatal(err)
	}
	if fb.snapshot()["host"] != "corp-proxy" {
		t.Errorf("not restored: %v", fb.snapshot())
	}
}

// A crashed owner's lock is gone with it: the journal is repaired.
func TestCrashedOwnersJournalIsRepaired(t *testing.T) {
	crashed, fb, path, logs := enabledManager(t)
	// What the OS does when the process dies.
	if err := crashed.owner.release(); err != nil {
		t.Fatal(err)
	}
	next := NewManager(fb, path, logs.logger())
	if repaired, err := next.Repair(); !repaired || err != nil {
		t.Fatalf("Repair = %v, %v; want true, nil", repaired, err)
	}
	if fb.snapshot()["host"] != "corp-proxy" {
		t.Errorf("not restored: %v", fb.snapshot())
	}
}
