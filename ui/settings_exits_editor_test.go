package ui

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/internal/filetest"
	"porthole/internal/testcert"
	"porthole/internal/upstreamtest"
)

// TestSettingsExitsEditor edits the exits through the widgets: a bad URL
// shows the URL field's problem, add, a duplicate name, move, delete, the
// policy and the pick; Apply writes the file with the config's JSON names
// and restarts the proxy with the new list.
func TestSettingsExitsEditor(t *testing.T) {
	path := settingsEnv(t)
	sock := upstreamtest.Microsocks(t, "", "")
	cfg := loopbackConfig()
	cfg.Mode, cfg.Bypass = "tunnel", []string{}
	cfg.Exits = []config.Exit{{Name: "one", Kind: "socks5", URL: sock.URL}}
	cfg.ExitPolicy, cfg.ExitSelected = "manual", "one"
	saveConfig(t, path, cfg)
	ctl := startController(t, cfg)
	s, done := openSettings(t, ctl, path)
	e := s.form.exits
	if len(e.list) != 1 || e.policy.Selected != "manual" || e.pick.Selected != "one" || !e.add.Disabled() {
		t.Fatalf("shown: %+v, policy %q, pick %q", e.list, e.policy.Selected, e.pick.Selected)
	}

	// A porthole exit: the credentials rows follow the kind.
	retype(e.name, "home")
	e.kind.SetSelected("porthole")
	if !rowShown(e, e.token) || rowShown(e, e.username) {
		t.Errorf("porthole rows: token %v, username %v", rowShown(e, e.token), rowShown(e, e.username))
	}
	retype(e.url, "http://nope.example")
	if p := e.problems["url"]; !p.Visible() || !strings.Contains(p.Text, "exits[1].url") || !e.add.Disabled() {
		t.Errorf("bad URL: problem %q shown %v, add disabled %v", p.Text, p.Visible(), e.add.Disabled())
	}
	if s.apply.Disabled() { // the fields are not the list: Apply stays usable
		t.Errorf("Apply disabled by the fields: %q", s.status.Text)
	}
	retype(e.url, "ws://127.0.0.1:1/porthole")
	retype(e.tokenFile, filetest.Write(t, "token", "secret\n"))
	ca := writeCA(t)
	retype(e.ca, ca)
	if e.problems["url"].Visible() || e.add.Disabled() {
		t.Fatalf("good exit: url problem %q, add disabled %v, other %q", e.problems["url"].Text, e.add.Disabled(), e.problem.Text)
	}
	test.Tap(e.add)
	if len(e.list) != 2 || e.list[1].Name != "home" || e.selected != 1 {
		t.Fatalf("after add: %+v, selected %d", e.list, e.selected)
	}

	// An http proxy after it; a name already used is the name's problem.
	retype(e.name, "office")
	e.kind.SetSelected("http")
	retype(e.url, "http://127.0.0.1:3128")
	retype(e.username, "me")
	retype(e.passwordFil, filetest.Write(t, "pw", "hunter2\n"))
	test.Tap(e.add)
	if len(e.list) != 3 || e.list[2].Name != "office" || e.list[2].TokenFile != "" || e.list[2].CA != ca {
		t.Fatalf("after second add: %+v", e.list)
	}
	retype(e.name, "one")
	if p := e.problems["name"]; !p.Visible() || !strings.Contains(p.Text, "exits[2].name") || !e.replace.Disabled() {
		t.Errorf("duplicate name: %q shown %v", p.Text, p.Visible())
	}
	retype(e.name, "office")

	// Reorder: office before home; then delete one, the pick goes with it.
	test.Tap(e.up)
	if names := exitNames(e.list); !slices.Equal(names, []string{"one", "office", "home"}) || e.selected != 1 {
		t.Fatalf("after up: %v, selected %d", names, e.selected)
	}
	e.rows.Select(0)
	test.Tap(e.del)
	if names := exitNames(e.list); !slices.Equal(names, []string{"office", "home"}) || e.pick.Selected != noExitSelected {
		t.Fatalf("after delete: %v, pick %q", names, e.pick.Selected)
	}
	if p := s.form.problems[fieldExits]; p.Visible() {
		t.Errorf("exits problem after delete: %q", p.Text)
	}
	e.policy.SetSelected("fastest")
	e.pick.SetSelected("home")

	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (%s)", err, s.status.Text)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Exits        []map[string]string `json:"exits"`
		ExitPolicy   *string             `json:"exit_policy"`
		ExitSelected *string             `json:"exit_selected"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Exits) != 2 || file.ExitPolicy == nil || *file.ExitPolicy != "fastest" || file.ExitSelected == nil || *file.ExitSelected != "home" {
		t.Fatalf("file:\n%s", raw)
	}
	office, home := file.Exits[0], file.Exits[1]
	for k, want := range map[string]string{"name": "office", "kind": "http", "url": "http://127.0.0.1:3128", "username": "me", "ca": ca} {
		if office[k] != want {
			t.Errorf("office %s = %q, want %q", k, office[k], want)
		}
	}
	if !strings.HasSuffix(office["password_file"], "pw") || !strings.HasSuffix(home["token_file"], "token") ||
		home["name"] != "home" || home["kind"] != "porthole" || home["url"] != "ws://127.0.0.1:1/porthole" || home["ca"] != ca {
		t.Errorf("file exits: %+v", file.Exits)
	}
	// The new list is the engine's (exits restart it), and the section of
	// the exits in use shows it.
	if st := ctl.Exits(); st.Policy != outbound.PolicyFastest || len(st.Exits) != 2 || st.Exits[0].Name != "office" {
		t.Errorf("in use: %+v", st)
	}
	if s.exits == nil || len(s.exits.rows) != 2 || s.exits.rows["home"] == nil {
		t.Errorf("exits section after Apply: %+v", s.exits)
	}
	x := s.exits
	s.win.Close()
	x.close()
}

// TestSettingsKeepsConcurrentPick: a pick made elsewhere (the tray) while
// the window is open is kept by an Apply that did not touch the pick, and
// replaced by one that did.
func TestSettingsKeepsConcurrentPick(t *testing.T) {
	path := settingsEnv(t)
	cfg := loopbackConfig()
	cfg.Exits = []config.Exit{{Name: "a", Kind: "socks5", URL: "socks5://127.0.0.1:1"}, {Name: "b", Kind: "socks5", URL: "socks5://127.0.0.1:2"}}
	cfg.ExitPolicy, cfg.ExitSelected = "manual", "a"
	saveConfig(t, path, cfg)
	ctl := app.NewController(cfg, nil, testLogger(t))
	defer func() { _ = ctl.Close() }()
	s, done := openSettings(t, ctl, path)
	s.exitsWork = func(f func()) { f() }
	if err := ctl.SelectExit(path, "b"); err != nil { // the tray's click
		t.Fatal(err)
	}
	retype(s.form.history, "77")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, err := config.Load(path); err != nil || got.ExitSelected != "b" || got.History != 77 {
		t.Errorf("untouched pick: %q, history %d, %v", got.ExitSelected, got.History, err)
	}
	s.form.exits.pick.SetSelected("a")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := ctl.Config().ExitSelected; got != "a" {
		t.Errorf("picked in the form: %q", got)
	}
	x := s.exits
	s.win.Close()
	x.close()
}

// rowShown reports whether the editor row holding w is shown.
func rowShown(e *exitsEditor, w fyne.CanvasObject) bool {
	for r := range e.kindRows {
		for _, o := range test.LaidOutObjects(r) {
			if o == w {
				return r.Visible()
			}
		}
	}
	return false
}

func exitNames(list []config.Exit) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.Name)
	}
	return out
}

// writeCA writes a self-signed CA certificate (PEM) and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	return filetest.Write(t, "ca.pem", string(testcert.New(t, "test exits CA").PEM()))
}
