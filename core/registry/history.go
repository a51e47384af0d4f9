package registry

import (
	"time"

	"github.com/rs/xid"
)

// history is a fixed-size ring of closed connections, oldest first.
// Guarded by the registry's lock.
type history struct {
	buf  []Info
	next int // where the next push goes
	full bool
}

func newHistory(size int) *history {
	return &history{buf: make([]Info, size)}
}

func (h *history) push(info Info) {
	if len(h.buf) == 0 {
		return
	}
	h.buf[h.next] = info
	h.next++
	if h.next == len(h.buf) {
		h.next = 0
		h.full = true
	}
}

// find returns the most recent closed record with id.
func (h *history) find(id xid.ID) (Info, bool) {
	if j := h.index(func(in *Info) bool { return in.ID == id }); j >= 0 {
		return h.buf[j], true
	}
	return Info{}, false
}

// index returns the position of the newest record that match accepts, or -1.
func (h *history) index(match func(*Info) bool) int {
	for i := range h.buf {
		// Walk backwards from the newest entry.
		j := (h.next - 1 - i + 2*len(h.buf)) % len(h.buf)
		if !h.full && j >= h.next {
			break
		}
		if match(&h.buf[j]) {
			return j
		}
	}
	return -1
}

// list returns a copy, oldest first.
func (h *history) list() []Info {
	if !h.full {
		return append([]Info(nil), h.buf[:h.next]...)
	}
	out := make([]Info, 0, len(h.buf))
	out = append(out, h.buf[h.next:]...)
	return append(out, h.buf[:h.next]...)
}

// setProcess records p on the closed record of id that ended at end (the
// same id may come back later with another record).
func (h *history) setProcess(id xid.ID, end time.Time, p *Process) {
	if j := h.index(func(in *Info) bool { return in.ID == id && in.End.Equal(end) }); j >= 0 {
		h.buf[j].Process = p
	}
}
