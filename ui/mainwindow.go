package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/core/outbound"
)

// mainWindow is the control surface where no tray can show Porthole's
// icon: the tray menu's controls in a small window that says why it is
// there. Closing it quits Porthole (nothing else would be left to bring
// it back).
//
// Concurrency: Fyne thread only.
type mainWindow struct {
	win         fyne.Window
	why         *widget.Label
	problem     *widget.Label // a config file that cannot be used; hidden when none
	fileNote    *widget.Label // a lesser note about the config file; hidden when none
	icon        *widget.Icon
	status      *widget.Label
	startStop   *widget.Button
	systemProxy *widget.Check
	mode        *widget.RadioGroup
	tunnelNote  *widget.Label
	atLogin     *widget.Check
	quit        *widget.Button

	// applying is set while apply sets the widgets, whose change callbacks
	// must then not act as if the user had clicked.
	applying bool
}

const (
	modeDirectOption = "Direct"
	modeTunnelOption = "Tunnel"
	modeRulesOption  = "Rules"
)

// newMainWindow builds the window; noTray is why there is no tray.
func newMainWindow(g *gui, noTray error) *mainWindow {
	m := &mainWindow{win: g.fyne.NewWindow("Porthole")}
	// noTray reads "no system tray: <reason>"; the sentence says the first
	// part already.
	reason := strings.TrimPrefix(noTray.Error(), errNoTray.Error()+": ")
	m.why = widget.NewLabel("Porthole shows this window because there is no system tray here: " +
		reason + ". Closing the window quits Porthole.")
	m.why.Wrapping = fyne.TextWrapWord
	m.why.Importance = widget.WarningImportance

	m.problem = widget.NewLabel("")
	m.problem.Wrapping = fyne.TextWrapWord
	m.problem.Importance = widget.DangerImportance
	m.problem.Hide()
	m.fileNote = widget.NewLabel("")
	m.fileNote.Wrapping = fyne.TextWrapWord
	m.fileNote.Importance = widget.WarningImportance
	m.fileNote.Hide()

	m.icon = widget.NewIcon(iconOff)
	m.status = widget.NewLabel("Starting…")
	m.status.TextStyle = fyne.TextStyle{Bold: true}
	m.startStop = widget.NewButton("Start", func() { g.toggleRunning() })
	m.systemProxy = widget.NewCheck("System proxy", func(on bool) {
		if !m.applying {
			g.setSystemProxy(on)
		}
	})
	m.mode = widget.NewRadioGroup([]string{modeDirectOption, modeTunnelOption, modeRulesOption}, func(choice string) {
		switch {
		case m.applying || choice == "":
		case choice == modeTunnelOption:
			g.setMode(outbound.ModeTunnel)
		case choice == modeRulesOption:
			g.setMode(outbound.ModeRules)
		default:
			g.setMode(outbound.ModeDirect)
		}
	})
	m.mode.Horizontal = true
	m.mode.Required = true
	m.tunnelNote = widget.NewLabel("")
	m.tunnelNote.Importance = widget.LowImportance
	m.atLogin = widget.NewCheck("Start at login", func(on bool) {
		if !m.applying {
			g.setStartAtLogin(on)
		}
	})
	m.quit = widget.NewButton("Quit", func() { g.quit() })

	buttons := container.NewHBox(
		widget.NewButton("Connections…", func() { g.showConnections() }),
		widget.NewButton("Logs…", func() { g.showLogs() }),
		widget.NewButton("Open dashboard", func() { g.openDashboard() }),
		widget.NewButton("Settings…", func() { g.showSettings() }),
		widget.NewButton("Copy terminal env", func() { g.copyTerminalEnv() }),
		widget.NewButton("About", func() { g.showAbout() }),
	)
	m.win.SetContent(container.NewPadded(container.NewVBox(
		m.why,
		widget.NewSeparator(),
		m.problem,
		m.fileNote,
		container.NewBorder(nil, nil, m.icon, m.startStop, m.status),
		m.systemProxy,
		container.NewHBox(widget.NewLabel("Mode"), m.mode, m.tunnelNote),
		m.atLogin,
		widget.NewSeparator(),
		container.NewBorder(nil, nil, nil, m.quit, buttons),
	)))
	m.win.Resize(fyne.NewSize(560, 0))
	m.win.SetCloseIntercept(func() { g.quit() })
	return m
}

// apply shows v.
func (m *mainWindow) apply(v controlsView) {
	m.applying = true
	defer func() { m.applying = false }()
	showNote(m.problem, v.Problem)
	showNote(m.fileNote, v.FileNote)
	m.icon.SetResource(v.Icon.resource())
	m.status.SetText(arrowSpaces.Replace(v.Status))
	m.startStop.SetText(v.StartStop)
	setWidgetEnabled(m.startStop, !v.StartStopBlocked)
	m.systemProxy.Text = v.SystemProxy
	m.systemProxy.SetChecked(v.SystemProxyOn)
	m.systemProxy.Refresh() // the text, when the check did not change
	setWidgetEnabled(m.systemProxy, !v.SystemProxyBlocked)
	switch v.Mode {
	case outbound.ModeTunnel:
		m.mode.SetSelected(modeTunnelOption)
	case outbound.ModeRules:
		m.mode.SetSelected(modeRulesOption)
	default:
		m.mode.SetSelected(modeDirectOption)
	}
	// Without an exit server tunnel mode cannot be chosen, nor rules mode
	// whose rules would tunnel; the note says where to set one.
	setWidgetEnabled(m.mode, !v.ModeBlocked)
	m.mode.Options = []string{modeDirectOption}
	if !v.TunnelBlocked || v.Mode == outbound.ModeTunnel {
		m.mode.Options = append(m.mode.Options, modeTunnelOption)
	}
	if !v.RulesBlocked || v.Mode == outbound.ModeRules {
		m.mode.Options = append(m.mode.Options, modeRulesOption)
	}
	m.mode.Refresh()
	m.tunnelNote.SetText("")
	switch {
	case v.TunnelBlocked && v.RulesBlocked:
		m.tunnelNote.SetText("Tunnel, and rules that tunnel, need an exit server: Settings…")
	case v.TunnelBlocked:
		m.tunnelNote.SetText("Tunnel needs an exit server: Settings…")
	}
	m.atLogin.Text = v.AtLogin
	m.atLogin.SetChecked(v.AtLoginOn)
	m.atLogin.Refresh()
	setWidgetEnabled(m.atLogin, !v.AtLoginBlocked)
	setWidgetEnabled(m.quit, !v.Quitting)
}

// arrowSpaces drops the space after the status line's arrows: Fyne 2.8.1
// draws ↓ and ↑ from a fallback font, and the space that follows such a
// glyph comes out as a missing-glyph box ("↓0" draws well, "↓ 0" does
// not). The tray menu is drawn by the panel and keeps the spaces.
var arrowSpaces = strings.NewReplacer("↓ ", "↓", "↑ ", "↑")

// showNote shows text in l, or hides l when text is empty.
func showNote(l *widget.Label, text string) {
	if text == "" {
		l.Hide()
		return
	}
	l.SetText(text)
	l.Show()
}

// setWidgetEnabled enables or disables w.
func setWidgetEnabled(w fyne.Disableable, on bool) {
	if on {
		w.Enable()
	} else {
		w.Disable()
	}
}
