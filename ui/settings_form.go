package ui

import (
	"os"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app/config"
	"porthole/core/outbound"
)

// Labels of the mode radio group; the config holds outbound.Mode values.
const (
	modeDirectLabel = "Direct"
	modeTunnelLabel = "Tunnel"
	modeRulesLabel  = "Rules"
)

var logLevels = []string{"debug", "info", "warn", "error"}

// settingsForm is the settings window's fields. It only shows values and
// problems; reading, checking and applying them is settingsWindow's work.
// Like every widget, it is used on the Fyne thread only.
type settingsForm struct {
	listenHost, listenPort *widget.Entry
	mode                   *widget.RadioGroup
	exit                   *widget.Entry
	token                  *widget.Entry // a password entry: the token is a secret
	tokenFile, exitCA      *widget.Entry
	bypass                 *widget.Entry // multi-line, one entry a line
	username, password     *widget.Entry
	logLevel               *widget.Select
	history                *widget.Entry
	startProxy             *widget.Check
	systemProxy            *widget.Check
	startAtLogin           *widget.Check
	rules                  *rulesEditor

	exits         *exitsEditor
	tokenSource   *widget.Label // which token tunnel mode will really use
	autostartNote *widget.Label // why Start at login cannot be changed
	problems      map[settingsField]*widget.Label

	content fyne.CanvasObject
}

// newSettingsForm builds the fields showing v; onChange runs after every
// edit (not for the initial values).
func newSettingsForm(v settingsValues, onChange func()) *settingsForm {
	f := &settingsForm{
		listenHost: widget.NewEntry(), listenPort: widget.NewEntry(),
		mode:      widget.NewRadioGroup([]string{modeDirectLabel, modeTunnelLabel, modeRulesLabel}, nil),
		exit:      widget.NewEntry(),
		token:     widget.NewPasswordEntry(),
		tokenFile: widget.NewEntry(), exitCA: widget.NewEntry(),
		bypass:   widget.NewMultiLineEntry(),
		username: widget.NewEntry(), password: widget.NewPasswordEntry(),
		logLevel:      widget.NewSelect(logLevels, nil),
		history:       widget.NewEntry(),
		startProxy:    widget.NewCheck("Start the proxy when Porthole starts", nil),
		systemProxy:   widget.NewCheck("Point the system proxy at Porthole while it runs", nil),
		startAtLogin:  widget.NewCheck("Start Porthole at login", nil),
		tokenSource:   noteLabel(),
		autostartNote: noteLabel(),
		problems:      map[settingsField]*widget.Label{},
	}
	f.listenHost.SetPlaceHolder("127.0.0.1")
	f.listenPort.SetPlaceHolder("8088")
	f.exit.SetPlaceHolder("wss://exit.example.com/porthole")
	f.tokenFile.SetPlaceHolder("optional: a file holding the token")
	f.exitCA.SetPlaceHolder("optional: PEM file, for an exit with its own CA")
	f.exits = newExitsEditor(exitSettings{}, func() { onChange() })
	f.rules = newRulesEditor(v.Rules, v.RulesFile, func() { onChange() },
		func() config.Config { cfg, _ := f.values().config(); return cfg })
	f.bypass.SetMinRowsVisible(4)
	f.mode.Horizontal = true
	f.mode.Required = true
	f.set(v)

	changed := func(string) { f.updateTokenSource(); onChange() }
	for _, e := range []*widget.Entry{f.listenHost, f.listenPort, f.exit, f.token, f.tokenFile, f.exitCA,
		f.bypass, f.username, f.password, f.history} {
		e.OnChanged = changed
	}
	f.mode.OnChanged = changed
	f.logLevel.OnChanged = changed
	checked := func(bool) { onChange() }
	f.startProxy.OnChanged, f.systemProxy.OnChanged, f.startAtLogin.OnChanged = checked, checked, checked

	listen := container.NewBorder(nil, nil, nil, sized(f.listenPort, 90), f.listenHost)
	form := widget.NewForm(
		f.item("Listen address, port", listen, fieldListen,
			"The HTTP and SOCKS5 port. Beyond 127.0.0.1 it needs a username and password."),
		f.item("Mode", f.mode, -1, "Tunnel: all through the exit but the bypass list. Rules: as the list below says"),
		f.item("Exit server URL", f.exit, fieldExit, "Tunnel mode needs it or the exits below: ws:// or wss://"),
		f.item("Token", container.NewVBox(f.token, f.tokenSource), -1, "Stored in the config file, readable by you only (0600)"),
		f.item("Token file", f.tokenFile, fieldTokenFile, ""),
		f.item("Exit CA file", f.exitCA, fieldExitCA, ""),
		f.item("Exits", f.exits.content, fieldExits,
			"Tunnel mode picks one by the policy (failover: the first up, in order)"),
		f.item("Bypass", f.bypass, fieldBypass,
			"Go direct even in tunnel mode, one a line: host, *.suffix, CIDR or <local>"),
		f.item("Rules", f.rules.content, fieldRules,
			"Rules mode: after the bypass list, the first match wins; no match: tunnel"),
		f.item("Username", f.username, -1, "Clients must give these (SOCKS5 and HTTP); leave both empty for none"),
		f.item("Password", f.password, fieldCredentials, ""),
		f.item("", container.NewVBox(f.startProxy, f.systemProxy, f.startAtLogin, f.autostartNote), -1, ""),
		f.item("Log level", f.logLevel, fieldLogLevel, "Applies at the next launch"),
		f.item("Closed history", f.history, fieldHistory,
			"Closed connections the inspector keeps, 0 to 100000; applies at the next launch"),
	)
	f.content = form
	return f
}

// item is a form row whose field shows its problem (if it has a field)
// below it.
func (f *settingsForm) item(label string, w fyne.CanvasObject, field settingsField, hint string) *widget.FormItem {
	if field >= 0 {
		p := problemLabel()
		f.problems[field] = p
		w = container.NewVBox(w, p)
	}
	it := widget.NewFormItem(label, w)
	it.HintText = hint
	return it
}

// noteLabel is a hidden label for a note (a warning, not an error).
func noteLabel() *widget.Label { return hiddenLabel(widget.WarningImportance) }

// hiddenLabel is an empty wrapping label of importance imp, hidden until
// there is something to say.
func hiddenLabel(imp widget.Importance) *widget.Label {
	l := widget.NewLabel("")
	l.Importance = imp
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

// sized gives o a minimum width (a port needs less room than a host).
func sized(o fyne.CanvasObject, width float32) fyne.CanvasObject {
	return container.NewGridWrap(fyne.NewSize(width, o.MinSize().Height), o)
}

// set shows v in the fields.
func (f *settingsForm) set(v settingsValues) {
	f.listenHost.SetText(v.ListenHost)
	f.listenPort.SetText(v.ListenPort)
	switch v.Mode {
	case string(outbound.ModeTunnel):
		f.mode.SetSelected(modeTunnelLabel)
	case string(outbound.ModeRules):
		f.mode.SetSelected(modeRulesLabel)
	default:
		f.mode.SetSelected(modeDirectLabel)
	}
	if f.rules != nil {
		f.rules.set(v.Rules, v.RulesFile)
	}
	f.exit.SetText(v.Exit)
	f.token.SetText(v.Token)
	f.tokenFile.SetText(v.TokenFile)
	f.exitCA.SetText(v.ExitCA)
	f.bypass.SetText(v.Bypass)
	f.username.SetText(v.Username)
	f.password.SetText(v.Password)
	f.logLevel.SetSelected(logLevelName(v.LogLevel))
	f.history.SetText(v.History)
	f.startProxy.SetChecked(v.StartProxy)
	f.systemProxy.SetChecked(v.SystemProxy)
	f.startAtLogin.SetChecked(v.StartAtLogin)
	if v.exits != nil {
		f.exits.set(*v.exits)
	} else {
		f.exits.set(exitSettings{})
	}
	f.updateTokenSource()
}

// values reads the fields.
func (f *settingsForm) values() settingsValues {
	mode := string(outbound.ModeDirect)
	switch f.mode.Selected {
	case modeTunnelLabel:
		mode = string(outbound.ModeTunnel)
	case modeRulesLabel:
		mode = string(outbound.ModeRules)
	}
	v := settingsValues{
		ListenHost: f.listenHost.Text, ListenPort: f.listenPort.Text,
		Mode: mode, Exit: f.exit.Text,
		Token: f.token.Text, TokenFile: f.tokenFile.Text, ExitCA: f.exitCA.Text,
		Bypass:   f.bypass.Text,
		Username: f.username.Text, Password: f.password.Text,
		LogLevel: f.logLevel.Selected, History: f.history.Text,
		StartProxy: f.startProxy.Checked, SystemProxy: f.systemProxy.Checked, StartAtLogin: f.startAtLogin.Checked,
		Rules: f.rules.rules(), RulesFile: f.rules.fileText(),
	}
	ex := f.exits.values()
	v.exits = &ex
	return v
}

// showProblems puts each problem next to its field and clears the others.
func (f *settingsForm) showProblems(problems []fieldProblem) {
	text := map[settingsField]string{}
	for _, p := range problems {
		if _, ok := text[p.field]; !ok {
			text[p.field] = p.err.Error()
		}
	}
	for field, l := range f.problems {
		if t, ok := text[field]; ok {
			l.SetText(t)
			l.Show()
		} else {
			l.Hide()
		}
	}
}

// updateTokenSource says when the token entry is not the one tunnel mode
// uses: app.EngineConfig takes PORTHOLE_TOKEN first, then the token file.
func (f *settingsForm) updateTokenSource() {
	switch {
	case strings.TrimSpace(os.Getenv("PORTHOLE_TOKEN")) != "":
		f.tokenSource.SetText("PORTHOLE_TOKEN is set in Porthole's environment and is used instead of this token.")
		f.tokenSource.Show()
	case strings.TrimSpace(f.tokenFile.Text) != "":
		f.tokenSource.SetText("The token file below is set and is used instead of this token.")
		f.tokenSource.Show()
	default:
		f.tokenSource.Hide()
	}
}

// logLevelName is the select's spelling of a level the config accepts
// ("" and "warning" included).
func logLevelName(s string) string {
	l, err := config.ParseLogLevel(s)
	if err != nil {
		return s // shown as is; the check names it
	}
	return strings.ToLower(l.String())
}
