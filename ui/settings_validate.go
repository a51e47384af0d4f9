package ui

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"porthole/app/config"
	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/rules"
)

// settingsField is a place in the settings form that a problem is shown
// next to.
type settingsField int

const (
	fieldListen settingsField = iota
	fieldExit
	fieldTokenFile
	fieldExitCA
	fieldBypass
	fieldCredentials
	fieldLogLevel
	fieldHistory
	fieldRules
	fieldExits
	fieldGeneral // not tied to one field: shown in the status line only
)

// fieldProblem is what is wrong with one field of the form.
type fieldProblem struct {
	field settingsField
	err   error
}

// settingsValues is the raw content of the settings form, as typed. It is a
// plain value so the checks below run without Fyne.
type settingsValues struct {
	ListenHost, ListenPort string
	Mode                   string
	Exit                   string
	Token, TokenFile       string
	ExitCA                 string
	Bypass                 string // one entry per line
	Username, Password     string
	LogLevel               string
	History                string
	StartProxy             bool
	SystemProxy            bool
	StartAtLogin           bool
	Rules                  []rules.Rule // the rules editor's list
	RulesFile              string
	// exits are the exits editor's list, policy and pick (nil: none).
	exits *exitSettings
}

// exitSettings are the exits fields of the config.
type exitSettings struct {
	Exits            []config.Exit
	Policy, Selected string
}

// valuesOf is the form content that shows cfg.
func valuesOf(cfg config.Config) settingsValues {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil { // cannot happen for a validated config; show it whole
		host, port = cfg.Listen, ""
	}
	return settingsValues{
		ListenHost: host, ListenPort: port,
		Mode: cfg.Mode, Exit: cfg.Exit,
		Token: cfg.Token, TokenFile: cfg.TokenFile, ExitCA: cfg.ExitCA,
		Bypass:   strings.Join(cfg.Bypass, "\n"),
		Username: cfg.Username, Password: cfg.Password,
		LogLevel: cfg.LogLevel, History: strconv.Itoa(cfg.History),
		StartProxy: cfg.StartProxy, SystemProxy: cfg.SystemProxy, StartAtLogin: cfg.StartAtLogin,
		Rules: cfg.Rules, RulesFile: cfg.RulesFile,
		exits: &exitSettings{Exits: cfg.Exits, Policy: cfg.ExitPolicy, Selected: cfg.ExitSelected},
	}
}

// bypassLines splits the bypass text into entries, one a line, without
// blank lines. It is never nil, so a saved empty list reads back equal.
func bypassLines(text string) []string {
	out := []string{}
	for line := range strings.Lines(text) {
		if e := strings.TrimSpace(line); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// config turns the form into a Config and lists every problem, each with
// the field it belongs to. The config is only usable when the list is
// empty. Each field is checked with config.Validate on a default config
// holding just that field, so every field gets its own message (Validate
// alone names only the first wrong one) and the messages stay those of
// the config package.
func (v settingsValues) config() (config.Config, []fieldProblem) {
	var problems []fieldProblem
	add := func(f settingsField, err error) {
		if err != nil {
			problems = append(problems, fieldProblem{f, err})
		}
	}
	cfg := config.Config{
		Listen: net.JoinHostPort(strings.TrimSpace(v.ListenHost), strings.TrimSpace(v.ListenPort)),
		Mode:   v.Mode, Exit: strings.TrimSpace(v.Exit),
		Token: strings.TrimSpace(v.Token), TokenFile: strings.TrimSpace(v.TokenFile),
		ExitCA:   strings.TrimSpace(v.ExitCA),
		Bypass:   bypassLines(v.Bypass),
		Username: v.Username, Password: v.Password,
		LogLevel:   v.LogLevel,
		StartProxy: v.StartProxy, SystemProxy: v.SystemProxy, StartAtLogin: v.StartAtLogin,
		Rules: v.Rules, RulesFile: strings.TrimSpace(v.RulesFile),
	}
	if v.exits != nil {
		cfg.Exits, cfg.ExitPolicy, cfg.ExitSelected = v.exits.Exits, v.exits.Policy, v.exits.Selected
	}

	add(fieldListen, checkListen(strings.TrimSpace(v.ListenHost), strings.TrimSpace(v.ListenPort)))
	// The exits' own problems are the exits editor's; the exit field's
	// is tunnel mode without any exit, or its URL.
	exitsErr := validateOnly(func(c *config.Config) {
		c.Exit, c.Exits, c.ExitPolicy, c.ExitSelected = cfg.Exit, cfg.Exits, cfg.ExitPolicy, cfg.ExitSelected
	})
	if !isExitsProblem(exitsErr) {
		exitsErr = nil
	}
	add(fieldExits, exitsErr)
	// Rules mode without an exit is the rules' problem: checked below
	// with the form's rules.
	if err := validateOnly(func(c *config.Config) { c.Mode, c.Exit, c.Exits = cfg.Mode, cfg.Exit, cfg.Exits }); !isExitsProblem(err) && !errors.Is(err, config.ErrNoExit) {
		add(fieldExit, err)
	}
	if cfg.Mode != string(outbound.ModeDirect) { // the engine reads these files only when it may tunnel
		add(fieldTokenFile, checkFile("token file", cfg.TokenFile))
		add(fieldExitCA, checkFile("exit CA file", cfg.ExitCA))
	}
	add(fieldBypass, checkBypass(v.Bypass))
	// With the exits, which a rule may name; their own problems are
	// shown at the exits.
	if err := validateOnly(func(c *config.Config) { c.Rules, c.Exit, c.Exits = cfg.Rules, cfg.Exit, cfg.Exits }); !isExitsProblem(err) {
		add(fieldRules, err)
	}
	if cfg.RulesFile != "" {
		add(fieldRules, checkFile("rules file", cfg.RulesFile))
	}
	if cfg.Mode == string(outbound.ModeRules) {
		add(fieldRules, cfg.CheckRulesExit(nil, cfg.RulesFile == ""))
	}
	add(fieldCredentials, validateOnly(func(c *config.Config) { c.Username, c.Password = cfg.Username, cfg.Password }))
	add(fieldLogLevel, validateOnly(func(c *config.Config) { c.LogLevel = cfg.LogLevel }))
	history, err := strconv.Atoi(strings.TrimSpace(v.History))
	if err != nil {
		add(fieldHistory, fmt.Errorf("closed history: %q is not a whole number", v.History))
	} else {
		cfg.History = history
		add(fieldHistory, validateOnly(func(c *config.Config) { c.History = history }))
	}
	if len(problems) == 0 { // a rule across fields the checks above missed
		add(fieldGeneral, cfg.Validate())
	}
	return cfg, problems
}

// isExitsProblem reports whether err is config's about exits, exit_policy
// or exit_selected (by the field it names).
func isExitsProblem(err error) bool {
	var fe *config.FieldError
	return errors.As(err, &fe) && (strings.HasPrefix(fe.Field, "exits[") || fe.Field == "exit_policy" || fe.Field == "exit_selected")
}

// validateOnly validates a default config changed by set, so the error is
// about the fields set touched.
func validateOnly(set func(*config.Config)) error {
	c := config.Default()
	set(&c)
	return c.Validate()
}

// checkListen checks the port as a number and the host as an address or a
// name (config.Validate accepts any non-empty host; the listener would then
// fail at start, far from the field that caused it).
func checkListen(host, port string) error {
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("listen: port %q is not a number from 0 to 65535", port)
	}
	if err := validateOnly(func(c *config.Config) { c.Listen = net.JoinHostPort(host, port) }); err != nil {
		return err
	}
	if net.ParseIP(host) == nil && !outbound.ValidHostname(host) {
		return fmt.Errorf("listen: %q is not an IP address or a host name", host)
	}
	return nil
}

// checkBypass checks each line alone, so the message names the line and
// the entry.
func checkBypass(text string) error {
	n := 0
	for line := range strings.Lines(text) {
		n++
		if _, err := outbound.ParseBypass([]string{strings.TrimSpace(line)}); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return nil
}

// checkFile reports a file setting that names nothing readable.
func checkFile(what, path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.IsDir() {
		return fmt.Errorf("%s: %s is a directory", what, path)
	}
	return nil
}

// fieldOfEngineError says which field an error of app.CheckSettings belongs
// to, for the errors that have a sentinel.
func fieldOfEngineError(err error) settingsField {
	if errors.Is(err, core.ErrAuthRequired) {
		return fieldCredentials
	}
	if errors.Is(err, config.ErrNoExit) { // a rules file's rule that tunnels
		return fieldRules
	}
	return fieldGeneral
}
