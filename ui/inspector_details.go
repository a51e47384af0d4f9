package ui

import (
	"fmt"
	"strings"
	"time"
)

// detailsText is the details pane for one connection: every field of the
// record, exact figures beside the human ones, and the full error.
func detailsText(r *connRow, now time.Time) string {
	if r == nil {
		return "Select a connection to see its details."
	}
	var b strings.Builder
	line := func(name, value string) {
		fmt.Fprintf(&b, "%-12s %s\n", name, value)
	}
	line("ID", r.idText)
	line("State", r.State.String())
	line("Protocol", r.Proto.String())
	line("Route", r.Route.String())
	line("Client", orDash(r.Client))
	line("Target", orDash(r.Target))
	line("Remote", orDash(r.Remote))
	line("Started", formatStamp(r.Start))
	established := formatStamp(r.Established)
	if !r.Established.IsZero() {
		established += " (+" + formatDuration(r.Established.Sub(r.Start)) + ")"
	}
	line("Established", established)
	line("Ended", formatStamp(r.End))
	line("Duration", formatDuration(r.duration(now)))
	line("Up", fmt.Sprintf("%s (%s B)", formatBytes(r.Up), formatCount(r.Up)))
	line("Down", fmt.Sprintf("%s (%s B)", formatBytes(r.Down), formatCount(r.Down)))
	speedName := "Speed"
	if !r.End.IsZero() {
		speedName = "Avg speed"
	}
	line(speedName, fmt.Sprintf("↑ %s  ↓ %s", formatRate(r.upRate), formatRate(r.downRate)))
	switch {
	case r.errText != "":
		b.WriteString("\nError\n" + r.errText + "\n")
	case !r.End.IsZero():
		b.WriteString("\nClosed cleanly.\n")
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
