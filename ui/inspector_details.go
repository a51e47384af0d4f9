package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"porthole/core/registry"
)

// detailsText is the details pane for one connection: every field of the
// record, exact figures beside the human ones, and the full error.
func detailsText(r *connRow, now time.Time) string {
	if r == nil {
		return "Select a connection to see its details."
	}
	var b detailLines
	line := b.line
	line("ID", r.idText)
	line("State", r.State.String())
	line("Protocol", r.Proto.String())
	line("Route", r.Route.String())
	line("Rule", orDash(r.ruleText))
	if r.Exit != "" {
		line("Exit", r.Exit)
	}
	line("Client", orDash(r.Client))
	processLines(line, r.Process)
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
	speedName := "Speed"
	if !r.End.IsZero() {
		speedName = "Avg speed"
	}
	b.traffic(r.Up, r.Down, speedName, r.upRate, r.downRate)
	switch {
	case r.errText != "":
		b.WriteString("\nError\n" + r.errText + "\n")
	case !r.End.IsZero():
		b.WriteString("\nClosed cleanly.\n")
	}
	return b.String()
}

// detailLines is a details pane's text, the connection's and the
// program's alike: a line a field, its value in one column, then free text.
type detailLines struct{ strings.Builder }

func (d *detailLines) line(name, value string) {
	fmt.Fprintf(d, "%-12s %s\n", name, value)
}

// traffic is the bytes each way, exact beside the human figure, and the
// speeds under speedName.
func (d *detailLines) traffic(up, down int64, speedName string, upRate, downRate float64) {
	d.line("Up", fmt.Sprintf("%s (%s B)", formatBytes(up), formatCount(up)))
	d.line("Down", fmt.Sprintf("%s (%s B)", formatBytes(down), formatCount(down)))
	d.line(speedName, fmt.Sprintf("↑ %s  ↓ %s", formatRate(upRate), formatRate(downRate)))
}

// processLines is the program that opened the connection: who it is,
// where it runs from, as whom, and its parent (the program a helper works
// for: a browser's network service, git-remote-https under git).
func processLines(line func(name, value string), p *registry.Process) {
	switch {
	case p == nil:
		line("App", "… (looking it up)")
		return
	case !p.Known():
		reason := p.Unknown
		if reason == "" {
			reason = "not found"
		}
		line("App", "unknown: "+reason)
		if p.UID >= 0 && p.User != "" {
			line("User", userText(p))
		}
		return
	}
	line("App", p.Label())
	line("PID", strconv.Itoa(p.PID))
	line("Executable", orDash(p.Path))
	line("User", userText(p))
	parent := "—"
	if p.PPID > 0 {
		parent = strconv.Itoa(p.PPID)
		if p.ParentName != "" {
			parent += " (" + p.ParentName + ")"
		}
	}
	line("Parent", parent)
}

// userText is "alice (uid 1000)", or the uid alone when it has no name.
func userText(p *registry.Process) string {
	if p.UID < 0 {
		return "—"
	}
	if p.User == "" {
		return "uid " + strconv.Itoa(p.UID)
	}
	return p.User + " (uid " + strconv.Itoa(p.UID) + ")"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
