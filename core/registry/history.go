package registry

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

// list returns a copy, oldest first.
func (h *history) list() []Info {
	if !h.full {
		return append([]Info(nil), h.buf[:h.next]...)
	}
	out := make([]Info, 0, len(h.buf))
	out = append(out, h.buf[h.next:]...)
	return append(out, h.buf[:h.next]...)
}
