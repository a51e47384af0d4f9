package rules

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// none is the index of "no rule": larger than any rule's.
const none = int32(math.MaxInt32)

// domains holds exact and suffix names in one hash keyed by the name: a
// lookup tries the whole name, then each name under a dot, so a host of n
// labels costs n map probes whatever the table's size.
type domains struct {
	m map[string]domainEntry
}

type domainEntry struct{ exact, suffix int32 }

func (d *domains) add(name string, idx int32, suffix bool) {
	if d.m == nil {
		d.m = make(map[string]domainEntry)
	}
	e, ok := d.m[name]
	if !ok {
		e = domainEntry{none, none}
	}
	if suffix {
		e.suffix = min(e.suffix, idx)
	} else {
		e.exact = min(e.exact, idx)
	}
	d.m[name] = e
}

// lookup returns the lowest index of a rule matching name (normalised).
func (d *domains) lookup(name []byte) int32 {
	if len(d.m) == 0 {
		return none
	}
	best := none
	if e, ok := d.m[string(name)]; ok { // string(b) in a map index does not allocate
		best = min(e.exact, e.suffix)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if e, ok := d.m[string(name[i+1:])]; ok && e.suffix < best {
				best = e.suffix
			}
		}
	}
	return best
}

// keywords is an Aho-Corasick automaton over the name alphabet, compiled
// to a full transition table: one pass over the name finds the lowest
// index of every keyword it contains.
type keywords struct {
	delta []int32 // state*nameAlphabet + class → next state
	out   []int32 // lowest index of a keyword ending in the state (or a suffix of it)
}

type keywordBuilder struct {
	next [][nameAlphabet]int32 // trie edges; 0 = none (the root is never a child)
	out  []int32
}

func (b *keywordBuilder) add(kw string, idx int32) {
	if b.next == nil {
		b.next = make([][nameAlphabet]int32, 1)
		b.out = []int32{none}
	}
	s := int32(0)
	for i := 0; i < len(kw); i++ {
		c := nameClass[kw[i]]
		if b.next[s][c] == 0 {
			b.next = append(b.next, [nameAlphabet]int32{})
			b.out = append(b.out, none)
			b.next[s][c] = int32(len(b.next) - 1)
		}
		s = b.next[s][c]
	}
	b.out[s] = min(b.out[s], idx)
}

func (b *keywordBuilder) build() keywords {
	if b.next == nil {
		return keywords{}
	}
	n := len(b.next)
	k := keywords{delta: make([]int32, n*nameAlphabet), out: b.out}
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c := 1; c < nameAlphabet; c++ {
		if t := b.next[0][c]; t != 0 {
			k.delta[c] = t
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 { // breadth first: a state's failure is set before its children's
		s := queue[0]
		queue = queue[1:]
		k.out[s] = min(k.out[s], k.out[fail[s]])
		for c := 1; c < nameAlphabet; c++ {
			t := b.next[s][c]
			if t == 0 {
				k.delta[int(s)*nameAlphabet+c] = k.delta[int(fail[s])*nameAlphabet+c]
				continue
			}
			fail[t] = k.delta[int(fail[s])*nameAlphabet+c]
			k.delta[int(s)*nameAlphabet+c] = t
			queue = append(queue, t)
		}
	}
	return k
}

func (k *keywords) lookup(name []byte) int32 {
	if k.delta == nil {
		return none
	}
	best := none
	s := int32(0)
	for _, ch := range name {
		c := nameClass[ch]
		if c == 0 {
			s = 0 // no keyword has this byte
			continue
		}
		s = k.delta[int(s)*nameAlphabet+int(c)]
		best = min(best, k.out[s])
	}
	return best
}

// u128 is an address as a number (IPv4 in the low 32 bits of its own table).
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) inc() (u128, bool) {
	if a.lo++; a.lo == 0 {
		a.hi++
		return a, a.hi == 0
	}
	return a, false
}

func (a u128) dec() u128 {
	if a.lo == 0 {
		a.hi--
	}
	a.lo--
	return a
}

func addrNum(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func prefixRange(p netip.Prefix) (lo, hi u128) {
	lo = addrNum(p.Addr())
	host := p.Addr().BitLen() - p.Bits()
	hi = lo
	switch {
	case host >= 128:
		hi = u128{math.MaxUint64, math.MaxUint64}
	case host >= 64:
		hi.hi |= 1<<(host-64) - 1
		hi.lo = math.MaxUint64
	case host > 0:
		hi.lo |= 1<<host - 1
	}
	return lo, hi
}

// cidrs is a set of prefixes of one family flattened into disjoint sorted
// ranges, each with the lowest index of the prefixes covering it: a lookup
// is one binary search.
type cidrs struct {
	start, end []u128
	idx        []int32
}

type cidrEntry struct {
	lo, hi u128
	idx    int32
}

// buildCIDRs flattens prefixes, which nest or are disjoint (never partly
// overlap), with a stack of the prefixes enclosing the current position.
func buildCIDRs(in []cidrEntry) cidrs {
	var t cidrs
	if len(in) == 0 {
		return t
	}
	slices.SortFunc(in, func(a, b cidrEntry) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		case b.hi.less(a.hi): // the wider first
			return -1
		case a.hi.less(b.hi):
			return 1
		}
		return int(a.idx - b.idx)
	})
	emit := func(lo, hi u128, idx int32) {
		if hi.less(lo) {
			return
		}
		if n := len(t.idx); n > 0 && t.idx[n-1] == idx {
			if next, _ := t.end[n-1].inc(); next == lo {
				t.end[n-1] = hi
				return
			}
		}
		t.start = append(t.start, lo)
		t.end = append(t.end, hi)
		t.idx = append(t.idx, idx)
	}
	type open struct {
		hi  u128
		idx int32
	}
	var stack []open
	var cur u128
	done := false // cur has passed the end of the address space
	pop := func() {
		top := stack[len(stack)-1]
		if !done {
			emit(cur, top.hi, top.idx)
			cur, done = top.hi.inc()
		}
		stack = stack[:len(stack)-1]
	}
	for _, p := range in {
		for len(stack) > 0 && stack[len(stack)-1].hi.less(p.lo) {
			pop()
		}
		eff := p.idx
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if cur.less(p.lo) && !done {
				emit(cur, p.lo.dec(), top.idx)
			}
			eff = min(eff, top.idx)
		}
		cur, done = p.lo, false
		stack = append(stack, open{p.hi, eff})
	}
	for len(stack) > 0 {
		pop()
	}
	return t
}

func (t *cidrs) lookup(a u128) int32 {
	// The last range starting at or before a.
	lo, hi := 0, len(t.start)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a.less(t.start[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 || t.end[lo-1].less(a) {
		return none
	}
	return t.idx[lo-1]
}

func (t *cidrs) size() int { return len(t.start) }
