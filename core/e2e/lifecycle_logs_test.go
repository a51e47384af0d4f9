package e2e

// The engine's log, captured: the lifecycle tests fail on any ERROR record.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// lcLogs keeps every record the engine logs, at every level.
type lcLogs struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   [][]slog.Attr // the logger's own attributes (With) per record
}

type lcHandler struct {
	logs  *lcLogs
	attrs []slog.Attr
}

func newCapturedLogger() (*slog.Logger, *lcLogs) {
	logs := &lcLogs{}
	return slog.New(&lcHandler{logs: logs}), logs
}

func (h *lcHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lcHandler) Handle(_ context.Context, r slog.Record) error {
	h.logs.mu.Lock()
	h.logs.records = append(h.logs.records, r.Clone())
	h.logs.attrs = append(h.logs.attrs, h.attrs)
	h.logs.mu.Unlock()
	return nil
}

func (h *lcHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lcHandler{logs: h.logs, attrs: append(slices.Clip(h.attrs), as...)}
}

// WithGroup: groups do not matter to what the test checks.
func (h *lcHandler) WithGroup(string) slog.Handler { return h }

func (l *lcLogs) format(i int) string {
	r := l.records[i]
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	for _, a := range l.attrs[i] {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	return b.String()
}

// check fails the test for every record at ERROR or above and logs how many
// records each level had.
func (l *lcLogs) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[slog.Level]int{}
	for i, r := range l.records {
		counts[r.Level]++
		if r.Level >= slog.LevelError {
			t.Errorf("ERROR log record: %s", l.format(i))
		}
	}
	t.Logf("log records: debug=%d info=%d warn=%d error=%d",
		counts[slog.LevelDebug], counts[slog.LevelInfo], counts[slog.LevelWarn], counts[slog.LevelError])
	infos := map[string]int{}
	for _, r := range l.records {
		if r.Level == slog.LevelInfo {
			infos[r.Message]++
		}
	}
	t.Logf("info messages: %v", infos)

	for i, r := range l.records {
		if r.Level == slog.LevelWarn {
			t.Logf("WARN log record: %s", l.format(i))
		}
	}
}
