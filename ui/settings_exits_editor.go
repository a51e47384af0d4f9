package ui

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app/config"
	"porthole/core/outbound"
)

var exitKinds = []string{string(outbound.KindPorthole), string(outbound.KindHTTP), string(outbound.KindSOCKS5)}

// noExitSelected is the selection select's entry for "no manual pick".
const noExitSelected = "(none)"

// exitsEditor is the Settings form's list of exits, in the rules editor's
// manner: the exits in order (the failover policy tries them so), a set of
// fields editing the selected exit (or the next one to add) with only the
// credentials its kind takes, checked as typed by config's own validation
// (its field names, exits[1].url, are mapped back to the field); add,
// update, delete, move up and down; and the policy and the manual pick.
//
// Fyne thread only.
type exitsEditor struct {
	listEdits[config.Exit]
	onChange func()

	name, url                       *widget.Entry
	kind                            *widget.Select
	token, tokenFile, ca            *widget.Entry
	username, password, passwordFil *widget.Entry
	policy, pick                    *widget.Select
	// kindRows are the credential rows, shown for the kinds that take them.
	kindRows map[fyne.CanvasObject][]outbound.Kind
	// problems are the fields' problem labels by the field's JSON name
	// (name, kind, url, token, ca, username); problem is for the rest.
	problems     map[string]*widget.Label
	problem      *widget.Label
	add, replace *widget.Button
	content      fyne.CanvasObject
	loading      bool // set() or fill() is filling the fields: no change callbacks
	// initialPolicy is the policy as set ("" in a file means failover).
	initialPolicy string
}

func newExitsEditor(v exitSettings, onChange func()) *exitsEditor {
	e := &exitsEditor{onChange: onChange, problems: map[string]*widget.Label{}}
	e.listEdits = listEdits[config.Exit]{selected: -1, fill: e.fill, changed: e.changed}
	e.rows = widget.NewList(
		func() int { return len(e.list) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			x := e.list[i]
			o.(*widget.Label).SetText(fmt.Sprintf("%d. %s (%s) %s", i+1, x.Name, kindOf(x), x.URL))
		})
	e.rows.OnSelected = func(i widget.ListItemID) { e.selectRow(i) }
	e.rows.OnUnselected = func(widget.ListItemID) {}
	edited := func(string) { e.edited() }
	entry := func(placeholder string, secret bool) *widget.Entry {
		w := widget.NewEntry()
		if secret {
			w = widget.NewPasswordEntry()
		}
		w.SetPlaceHolder(placeholder)
		w.OnChanged = edited
		return w
	}
	e.name = entry("home", false)
	e.url = entry("", false)
	e.kind = widget.NewSelect(exitKinds, func(string) { e.showKind(); e.edited() })
	e.tokenFile = entry("optional: a file holding the token", false)
	e.token = entry("or the token itself", true)
	e.ca = entry("optional: PEM file of CAs (wss:// or https://)", false)
	e.username = entry("optional", false)
	e.passwordFil = entry("optional: a file holding the password", false)
	e.password = entry("or the password itself", true)
	e.policy = widget.NewSelect(exitPolicies, func(string) {
		if !e.loading {
			e.onChange()
		}
	})
	e.pick = widget.NewSelect(nil, func(string) {
		if !e.loading {
			e.onChange()
		}
	})
	e.problem = problemLabel()
	e.add = widget.NewButton("Add", e.addExit)
	e.replace = widget.NewButton("Update", e.updateExit)
	e.buttons()

	row := func(label string, w fyne.CanvasObject, field string) fyne.CanvasObject {
		if field != "" {
			p := problemLabel()
			e.problems[field] = p
			w = container.NewVBox(w, p)
		}
		return container.NewBorder(nil, nil, sized(widget.NewLabel(label), 120), nil, w)
	}
	porthole, http, socks5 := outbound.KindPorthole, outbound.KindHTTP, outbound.KindSOCKS5
	tokenFileRow, tokenRow := row("Token file", e.tokenFile, ""), row("Token", e.token, "token")
	userRow, passFileRow, passRow := row("Username", e.username, "username"), row("Password file", e.passwordFil, ""), row("Password", e.password, "")
	caRow := row("CA file", e.ca, "ca")
	e.kindRows = map[fyne.CanvasObject][]outbound.Kind{
		tokenFileRow: {porthole}, tokenRow: {porthole},
		userRow: {http, socks5}, passFileRow: {http, socks5}, passRow: {http, socks5},
		caRow: {porthole, http},
	}
	e.set(v)
	e.content = container.NewVBox(
		container.NewStack(listHeight(110), e.rows),
		row("Name", e.name, "name"), row("Kind", e.kind, "kind"), row("URL", e.url, "url"),
		tokenFileRow, tokenRow, userRow, passFileRow, passRow, caRow,
		e.problem,
		container.NewHBox(e.add, e.replace, e.del, e.up, e.down),
		row("Policy", e.policy, ""), row("Manual pick", e.pick, ""),
	)
	return e
}

// problemLabel is a hidden label for a field's problem.
func problemLabel() *widget.Label { return hiddenLabel(widget.DangerImportance) }

func kindOf(x config.Exit) string {
	if x.Kind == "" {
		return string(outbound.KindPorthole)
	}
	return x.Kind
}

// set shows v, nothing selected.
func (e *exitsEditor) set(v exitSettings) {
	e.loading = true
	defer func() { e.loading = false }()
	e.list = slices.Clone(v.Exits)
	e.selected = -1
	e.rows.UnselectAll()
	e.rows.Refresh()
	policy := v.Policy
	if policy == "" {
		policy = string(outbound.PolicyFailover)
	}
	e.initialPolicy = v.Policy
	e.policy.SetSelected(policy)
	e.updatePick(v.Selected, true)
	e.fill(config.Exit{Kind: string(outbound.KindPorthole)})
}

// values is the exits, policy and pick as edited.
func (e *exitsEditor) values() exitSettings {
	v := exitSettings{Policy: e.policy.Selected}
	if len(e.list) > 0 {
		v.Exits = slices.Clone(e.list)
	}
	if e.pick.Selected != noExitSelected {
		v.Selected = e.pick.Selected
	}
	if v.Policy == string(outbound.PolicyFailover) && e.initialPolicy == "" {
		v.Policy = "" // the file's "" is failover: not a change
	}
	return v
}

// updatePick offers the exits' names for the manual pick and picks sel
// if it is one of them (else none). foreign keeps a sel the list does not
// hold as a choice (a file's single exit), so it is not dropped unseen.
func (e *exitsEditor) updatePick(sel string, foreign bool) {
	opts := []string{noExitSelected}
	for _, x := range e.list {
		opts = append(opts, x.Name)
	}
	if foreign && sel != "" && !slices.Contains(opts, sel) {
		opts = append(opts, sel)
	}
	was := e.loading
	e.loading = true
	e.pick.Options = opts
	if !slices.Contains(opts, sel) {
		sel = noExitSelected
	}
	e.pick.SetSelected(sel)
	e.pick.Refresh()
	e.loading = was
}

func (e *exitsEditor) fill(x config.Exit) {
	was := e.loading
	e.loading = true
	e.name.SetText(x.Name)
	e.kind.SetSelected(kindOf(x))
	e.url.SetText(x.URL)
	e.tokenFile.SetText(x.TokenFile)
	e.token.SetText(x.Token)
	e.ca.SetText(x.CA)
	e.username.SetText(x.Username)
	e.passwordFil.SetText(x.PasswordFile)
	e.password.SetText(x.Password)
	e.loading = was
	e.showKind()
	e.check()
}

// urlExamples are the URL field's placeholders by kind.
var urlExamples = map[outbound.Kind]string{
	outbound.KindPorthole: "wss://exit.example.com/porthole",
	outbound.KindHTTP:     "http://proxy.example:3128 or https://…",
	outbound.KindSOCKS5:   "socks5://127.0.0.1:1080",
}

// showKind shows the credential rows of the kind selected, and its URL
// example.
func (e *exitsEditor) showKind() {
	kind := outbound.Kind(e.kind.Selected)
	e.url.SetPlaceHolder(urlExamples[kind])
	for r, kinds := range e.kindRows {
		if slices.Contains(kinds, kind) {
			r.Show()
		} else {
			r.Hide()
		}
	}
}

// fields is the exit the fields hold, with only the credentials its
// kind takes (the hidden ones keep their text but are not saved).
func (e *exitsEditor) fields() config.Exit {
	x := config.Exit{Name: strings.TrimSpace(e.name.Text), Kind: e.kind.Selected, URL: strings.TrimSpace(e.url.Text)}
	switch outbound.Kind(x.Kind) {
	case outbound.KindPorthole:
		x.TokenFile, x.Token, x.CA = strings.TrimSpace(e.tokenFile.Text), strings.TrimSpace(e.token.Text), strings.TrimSpace(e.ca.Text)
	case outbound.KindHTTP:
		x.CA = strings.TrimSpace(e.ca.Text)
		fallthrough
	case outbound.KindSOCKS5:
		x.Username, x.PasswordFile, x.Password = e.username.Text, strings.TrimSpace(e.passwordFil.Text), e.password.Text
	}
	return x
}

// checkAt validates the list with the fields' exit put at index at
// (replacing the exit there when replace), as the config file would be:
// the JSON name of the problem's field when it is the fields' exit's (""
// for another row's or one without a field), and the problem.
func (e *exitsEditor) checkAt(at int, replace bool) (string, error) {
	x := e.fields()
	list := slices.Clone(e.list)
	if replace {
		list[at] = x
	} else {
		list = slices.Insert(list, at, x)
	}
	err := validateOnly(func(c *config.Config) { c.Exits = list })
	if err == nil {
		return "", nil
	}
	i, field, ok := exitField(err)
	if !ok || i != at {
		if ok {
			err = fmt.Errorf("exit %d (%s): %w", i+1, list[i].Name, err)
		}
		return "", err
	}
	return field, err
}

// exitField reads config's field name of an exit's problem ("exits[1].url"):
// the index and the field.
func exitField(err error) (int, string, bool) {
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		return 0, "", false
	}
	rest, ok := strings.CutPrefix(fe.Field, "exits[")
	if !ok {
		return 0, "", false
	}
	idx, field, ok := strings.Cut(rest, "].")
	i, err2 := strconv.Atoi(idx)
	if !ok || err2 != nil {
		return 0, "", false
	}
	return i, field, true
}

// check shows the fields' problem: as an update of the selected exit, or
// as an exit to add when none is selected.
func (e *exitsEditor) check() {
	addField, addErr := e.checkAt(e.addAt(), false)
	var updErr error
	err, field := addErr, addField
	if e.sel() {
		field, updErr = e.checkAt(e.selected, true)
		err = updErr
	}
	// Nothing typed yet is no problem to point at (Add stays disabled).
	blank := e.name.Text == "" && e.url.Text == "" && !e.sel()
	for f, l := range e.problems {
		if err != nil && !blank && f == field {
			l.SetText(err.Error())
			l.Show()
		} else {
			l.Hide()
		}
	}
	if _, ok := e.problems[field]; err != nil && !blank && !ok {
		e.problem.SetText(err.Error())
		e.problem.Show()
	} else {
		e.problem.Hide()
	}
	setWidgetEnabled(e.add, addErr == nil)
	setWidgetEnabled(e.replace, e.sel() && updErr == nil)
	e.enableMoves()
}

func (e *exitsEditor) edited() {
	if !e.loading {
		e.check()
	}
}

func (e *exitsEditor) addExit() {
	at := e.addAt()
	if _, err := e.checkAt(at, false); err != nil {
		return
	}
	e.list = slices.Insert(e.list, at, e.fields())
	e.changed(at)
}

// updateExit replaces the selected exit; the manual pick follows a rename.
func (e *exitsEditor) updateExit() {
	if !e.sel() {
		return
	}
	if _, err := e.checkAt(e.selected, true); err != nil {
		return
	}
	old := e.list[e.selected].Name
	e.list[e.selected] = e.fields()
	if e.pick.Selected == old {
		e.updatePick(e.list[e.selected].Name, false)
	}
	e.changed(e.selected)
}

// changed shows the list after an edit with row sel selected (-1: none).
func (e *exitsEditor) changed(sel int) {
	e.updatePick(e.pick.Selected, false)
	e.reselect(sel)
	if sel < 0 {
		e.check()
	}
	e.onChange()
}
