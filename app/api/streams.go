package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"porthole/app/logring"
)

// tick is how often /traffic and /memory send, as mihomo does.
const tick = time.Second

type trafficJSON struct {
	Up   int64 `json:"up"`
	Down int64 `json:"down"`
}

// traffic streams the proxy's bytes per second, up and down, each second
// (the registry's rates of its last stats tick).
func (s *Server) traffic(w http.ResponseWriter, r *http.Request) {
	reg := s.opts.Backend.Registry()
	s.stream(w, r, func(ctx context.Context, send sender) error {
		return ticking(ctx, send, tick, func() any {
			t := reg.Totals()
			return trafficJSON{Up: int64(t.UpRate), Down: int64(t.DownRate)}
		})
	})
}

type memoryJSON struct {
	Inuse   uint64 `json:"inuse"`
	OSLimit uint64 `json:"oslimit"`
}

// memory streams the memory the process holds from the OS, each second.
// The first value is 0, as mihomo sends it: dashboards start their chart
// from it.
func (s *Server) memory(w http.ResponseWriter, r *http.Request) {
	s.stream(w, r, func(ctx context.Context, send sender) error {
		first := true
		return ticking(ctx, send, tick, func() any {
			if first {
				first = false
				return memoryJSON{}
			}
			return memoryJSON{Inuse: s.mem.inUse()}
		})
	})
}

// memSampler reads the Go runtime's view of the memory it has from the
// OS and not given back; cheap, and without stopping the world.
type memSampler struct {
	mu      sync.Mutex
	samples []metrics.Sample
}

func newMemSampler() *memSampler {
	return &memSampler{samples: []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
}

func (m *memSampler) inUse() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	metrics.Read(m.samples)
	total, released := m.samples[0].Value, m.samples[1].Value
	if total.Kind() != metrics.KindUint64 || released.Kind() != metrics.KindUint64 {
		return 0
	}
	return total.Uint64() - released.Uint64()
}

type logJSON struct {
	Type    string `json:"type"`
	Payload string `json:"payload"`
}

type logFieldJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// logStructuredJSON is mihomo's ?format=structured.
type logStructuredJSON struct {
	Time    string         `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Fields  []logFieldJSON `json:"fields"`
}

// clashLevels are the levels /logs?level= and /configs log-level take.
var clashLevels = map[string]slog.Level{
	"debug":   slog.LevelDebug,
	"info":    slog.LevelInfo,
	"warning": slog.LevelWarn,
	"warn":    slog.LevelWarn, // slog's word, accepted too
	"error":   slog.LevelError,
	"silent":  slog.LevelError + 8, // above every record
}

// clashLevel is a level's Clash name.
func clashLevel(l slog.Level) string {
	switch {
	case l > slog.LevelError:
		return "silent"
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// logs streams the log records from now on at the asked level (default
// info), as {type, payload} or, with format=structured, with the fields
// apart. A reader that falls behind loses records and is told so in the
// stream; it is not waited for.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("level")
	if name == "" {
		name = "info"
	}
	level, ok := clashLevels[strings.ToLower(name)]
	if !ok {
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	structured := q.Get("format") == "structured"
	encode := func(rec logring.Record) any {
		if !structured {
			return logJSON{Type: clashLevel(rec.Level), Payload: rec.Text()}
		}
		lv := clashLevel(rec.Level)
		if lv == "warning" {
			lv = "warn"
		}
		fields := make([]logFieldJSON, 0, len(rec.Attrs))
		for _, a := range rec.Attrs {
			fields = append(fields, logFieldJSON{Key: a.Key, Value: a.Value})
		}
		return logStructuredJSON{Time: rec.Time.Format(time.TimeOnly), Level: lv, Message: rec.Message, Fields: fields}
	}
	ring := s.opts.Logs
	s.stream(w, r, func(ctx context.Context, send sender) error {
		if ring == nil {
			<-ctx.Done()
			return ctx.Err()
		}
		_, sub := ring.Subscribe(level)
		defer func() { sub.Close() }()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case rec, ok := <-sub.C:
				if ok {
					if err := send(encode(rec)); err != nil {
						return err
					}
					continue
				}
				if !errors.Is(sub.Err(), logring.ErrFellBehind) {
					return sub.Err()
				}
				_, sub = ring.Subscribe(level)
				lost := logring.Record{Time: time.Now(), Level: max(level, slog.LevelWarn),
					Message: "porthole: log records were dropped here: this reader fell behind"}
				if err := send(encode(lost)); err != nil {
					return err
				}
			}
		}
	})
}
