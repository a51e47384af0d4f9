package ui

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/rs/xid"
)

// Human units for the inspector, the tray's status line and the settings
// window. Sizes are decimal (1 kB = 1,000 B), like the file managers and
// network tools of the desktops Porthole runs on; three significant digits
// are enough to read a number at a glance without the column jumping.

// formatBytes renders a byte count: "0 B", "999 B", "1.23 kB", "45.6 MB",
// "789 GB", "1.2 TB".
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + formatBytes(-n)
	}
	return scaled(float64(n), "B")
}

// formatRate renders bytes per second: "0 B/s", "40.0 kB/s", "1.20 MB/s".
func formatRate(bytesPerSec float64) string {
	if math.IsNaN(bytesPerSec) || math.IsInf(bytesPerSec, 0) || bytesPerSec < 0 {
		bytesPerSec = 0
	}
	return scaled(bytesPerSec, "B") + "/s"
}

var decimalPrefixes = []string{"", "k", "M", "G", "T", "P", "E"}

// scaled picks the prefix that leaves 1–999 before the unit and keeps three
// significant digits (bytes themselves are whole numbers).
func scaled(v float64, unit string) string {
	if v < 1000 {
		return strconv.FormatFloat(math.Floor(v), 'f', 0, 64) + " " + unit
	}
	i := 0
	for v >= 999.5 && i < len(decimalPrefixes)-1 {
		v /= 1000
		i++
	}
	switch {
	case v < 9.995:
		return fmt.Sprintf("%.2f %s%s", v, decimalPrefixes[i], unit)
	case v < 99.95:
		return fmt.Sprintf("%.1f %s%s", v, decimalPrefixes[i], unit)
	}
	return fmt.Sprintf("%.0f %s%s", v, decimalPrefixes[i], unit)
}

// formatDuration renders a duration for a table cell: "0 ms", "850 ms",
// "4.2 s", "38 s", "4 min 05 s", "2 h 03 min". Two units at most: the
// column is for reading, the details pane has the exact times.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int64(d/time.Minute), int64(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%d h %02d min", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
}

// formatCount renders a count with thousands separators: "12,345".
func formatCount[N ~int | ~int64 | ~uint64](n N) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// shortIDLen is how much of an xid the table shows. An xid is time (4
// bytes), machine (3), pid (2) and a counter (3); its text ends with the
// counter, which is what tells two connections of one run apart, so the
// tail is the part worth showing. The filter and the details pane use the
// full id, the one the logs print.
const shortIDLen = 8

// formatShortID renders the distinguishing tail of an id.
func formatShortID(id xid.ID) string {
	s := id.String()
	return s[len(s)-shortIDLen:]
}

// formatClock renders a time of day for the started column.
func formatClock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("15:04:05")
}

// formatStamp renders an exact time for the details pane.
func formatStamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02 15:04:05.000")
}
