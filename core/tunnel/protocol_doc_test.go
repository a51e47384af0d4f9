package tunnel

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestProtocolDocMatchesCode reads PROTOCOL.md and checks that its frame
// types, codes and numbers are the code's, so the specification cannot
// drift from the implementation again (it once gave a stale MaxFrameSize).
func TestProtocolDocMatchesCode(t *testing.T) {
	raw, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	// Sentences wrap anywhere: match numbers in the text with its
	// whitespace collapsed.
	text := strings.Join(strings.Fields(string(raw)), " ")

	t.Run("types", func(t *testing.T) {
		checkValueTable(t, lines, "type", regexp.MustCompile("^\\| `0x([0-9A-F]{2})` \\| `([A-Z_]+)` \\|"), TypeOpen, TypePong)
	})

	t.Run("codes", func(t *testing.T) {
		checkValueTable(t, lines, "code", regexp.MustCompile("^\\| `0x([0-9A-F]{2})` ([a-z ]+?) \\|"), CodeOther, CodeSessionLost)
	})

	t.Run("numbers", func(t *testing.T) {
		// Each pattern captures one number of the document; every place
		// that states it must give the code's value.
		for _, c := range []struct {
			pattern string
			want    int
		}{
			{"`MaxFrameSize` \\(([0-9,]+) bytes", MaxFrameSize},
			{"the ([0-9]+)-byte header", HeaderSize},
			{"a ([0-9,]+)-byte target", MaxTarget},
			{"and ([0-9,]+) bytes of early data", MaxData},
			{"message's length minus ([0-9]+)", HeaderSize},
			{"`target_len u16` \\(1\\.\\.([0-9,]+)\\)", MaxTarget},
			{"`early data` \\(0\\.\\.([0-9,]+),", MaxData},
			{"the exit connected to, 0\\.\\.([0-9,]+),", MaxTarget},
			{"\\| 1\\.\\.([0-9,]+) bytes of stream data", MaxData},
			{"`reason` \\(UTF-8, 0\\.\\.([0-9,]+),", MaxReason},
			{"in the `OPEN` \\(up to ([0-9]+) KiB\\)", MaxData >> 10},
			{"\\*\\*default window, ([0-9,]+) bytes", DefaultWindow},
			{"\\(([0-9]+) KiB\\)\\*\\* counting early data", DefaultWindow >> 10},
			{"up to \\*\\*([0-9]+) MiB\\*\\*", DefaultMaxWindow >> 20},
			{"at most ([0-9]+) KiB at a time", MaxData >> 10},
			{"at most about ([0-9]+) KiB", (batchCap + 512) >> 10},
			{"more than ([0-9,]+) answers", maxAnswers},
		} {
			ms := regexp.MustCompile(c.pattern).FindAllStringSubmatch(text, -1)
			if len(ms) == 0 {
				t.Errorf("PROTOCOL.md no longer says %q: update the document or this test", c.pattern)
			}
			for _, m := range ms {
				got, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
				if err != nil || got != c.want {
					t.Errorf("PROTOCOL.md says %q where the code has %s", m[0], commas(c.want))
				}
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		ms := regexp.MustCompile(`porthole\.v[0-9]+`).FindAllString(text, -1)
		if len(ms) == 0 {
			t.Fatal("PROTOCOL.md names no protocol version")
		}
		for _, m := range ms {
			if m != Version {
				t.Errorf("PROTOCOL.md names version %s; the code speaks %s", m, Version)
			}
		}
	})
}

// checkValueTable checks one of PROTOCOL.md's tables of byte values (frame
// types, codes): each row the pattern matches (value in hex, name) names
// the value as the code does, and every value from first to last has a row.
func checkValueTable[T interface {
	~uint8
	fmt.Stringer
}](t *testing.T, lines []string, what string, row *regexp.Regexp, first, last T) {
	t.Helper()
	seen := map[T]bool{}
	for _, line := range lines {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseUint(m[1], 16, 8) // two hex digits by the pattern
		v := T(n)
		if v.String() != m[2] {
			t.Errorf("PROTOCOL.md gives %s 0x%s as %q; the code calls it %q", what, m[1], m[2], v)
		}
		seen[v] = true
	}
	for v := first; v <= last; v++ {
		if !seen[v] {
			t.Errorf("PROTOCOL.md's %s table lacks %s (0x%02X)", what, v, uint8(v))
		}
	}
}

// commas writes n as the document does: 33,048.
func commas(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
