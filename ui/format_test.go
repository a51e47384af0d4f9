package ui

import (
	"testing"
	"time"

	"github.com/rs/xid"
)

func TestFormatBytesAndRates(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.00 kB", 1234: "1.23 kB", 45_600: "45.6 kB",
		999_499: "999 kB", 999_500: "1.00 MB", 1_200_000: "1.20 MB", 789_000_000_000: "789 GB",
		1_200_000_000_000: "1.20 TB", -1500: "-1.50 kB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for r, want := range map[float64]string{0: "0 B/s", 999.7: "999 B/s", 40_000: "40.0 kB/s", -3: "0 B/s"} {
		if got := formatRate(r); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", r, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0 ms", 850 * time.Millisecond: "850 ms", 4200 * time.Millisecond: "4.2 s",
		38 * time.Second: "38 s", 4*time.Minute + 5*time.Second: "4 min 05 s",
		2*time.Hour + 3*time.Minute + 59*time.Second: "2 h 03 min", -time.Second: "0 ms",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFormatCountAndIDs(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
	id := xid.New()
	if got := formatShortID(id); len(got) != shortIDLen || id.String()[20-shortIDLen:] != got {
		t.Errorf("formatShortID(%s) = %q", id, got)
	}
}
