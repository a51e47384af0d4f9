package registry

import "github.com/rs/xid"

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
	for i := range h.buf {
		// Walk backwards from the newest entry.
		j := (h.next - 1 - i + 2*len(h.buf)) % len(h.buf)
		if !h.full && j >= h.next {
			break
		}
		if h.buf[j].ID == id {
			return h.buf[j], true
		}
	}
	return Info{}, false
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
