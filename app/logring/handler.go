package logring

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
)

// Tee returns a handler that keeps records in ring (at the ring's level)
// and hands them to next (at next's level), so adding the ring changes
// nothing about what next writes.
func Tee(ring *Ring, next slog.Handler) slog.Handler {
	return &tee{ring: ring, next: next}
}

// tee is immutable: WithAttrs and WithGroup return new ones.
type tee struct {
	ring   *Ring
	next   slog.Handler
	attrs  []Attr // from WithAttrs, already flattened and prefixed
	prefix string // open groups, "a.b."
}

func (h *tee) Enabled(ctx context.Context, l slog.Level) bool {
	return h.ring.Enabled(l) || h.next.Enabled(ctx, l)
}

func (h *tee) Handle(ctx context.Context, r slog.Record) error {
	if h.ring.Enabled(r.Level) {
		rec := Record{Time: r.Time, Level: r.Level, Message: r.Message}
		if n := len(h.attrs) + r.NumAttrs(); n > 0 {
			rec.Attrs = make([]Attr, 0, n)
			rec.Attrs = append(rec.Attrs, h.attrs...)
			r.Attrs(func(a slog.Attr) bool {
				rec.Attrs = appendAttr(rec.Attrs, h.prefix, a)
				return true
			})
		}
		h.ring.Add(rec)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *tee) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append([]Attr(nil), h.attrs...)
	for _, a := range as {
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *tee) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// appendAttr adds a as text, groups flattened into dotted keys; empty
// attributes are skipped, as slog's handlers do.
func appendAttr(out []Attr, prefix string, a slog.Attr) []Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return out
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			out = appendAttr(out, p, g)
		}
		return out
	}
	return append(out, Attr{Key: prefix + a.Key, Value: a.Value.String()})
}

// Text is the record's message and attributes in one line, as the Logs
// window and the API show it: `message key=value key="a value"`.
func (r Record) Text() string {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range r.Attrs {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		if needsQuote(a.Value) {
			b.WriteString(strconv.Quote(a.Value))
		} else {
			b.WriteString(a.Value)
		}
	}
	return b.String()
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, c := range s {
		if c <= ' ' || c == '"' || c == '=' || c == 0x7f {
			return true
		}
	}
	return false
}
