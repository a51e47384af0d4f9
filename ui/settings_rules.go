package ui

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/rules"
)

var (
	ruleKinds = []string{rules.KindDomain, rules.KindDomainSuffix, rules.KindDomainKeyword, rules.KindIPCIDR,
		rules.KindPort, rules.KindApp, rules.KindInbound, rules.KindRuleSet, rules.KindMatch}
	ruleActions = []string{rules.ActionDirect, rules.ActionTunnel, rules.ActionReject}
)

// ruleArrows drops the space after a rule's arrow, as arrowSpaces does
// for the status line's: Fyne 2.8.1 draws → from a fallback font and the
// space after it as a missing-glyph box.
var ruleArrows = strings.NewReplacer("→ ", "→")

// listHeight is an invisible strut that gives the rule list its height
// while its width follows the form's.
func listHeight(h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(1, h))
	return r
}

// ruleTestTimeout bounds the test box's answer (an ip-cidr rule that
// resolves looks the name up).
const ruleTestTimeout = 3 * time.Second

// rulesEditor is the Settings window's rule list: the rules in order with
// kind / value / action, a row of fields editing the selected rule (or
// the next one to add), checked as typed; add, delete, move up and down;
// the rules file, an import of a file's rules into the list, and a test
// box that says which rule a host:port (and program) meets under the
// rules being edited.
//
// Fyne thread only; the test box's lookup runs on a goroutine and
// answers through fyne.Do.
type rulesEditor struct {
	listEdits[rules.Rule]
	onChange func()
	// current is the settings the form holds now, for the test box.
	current func() config.Config

	kind, action         *widget.Select
	value, exit          *widget.Entry
	resolve              *widget.Check
	problem              *widget.Label
	add, replace         *widget.Button
	file, importPath     *widget.Entry
	importNote           *widget.Label
	testTarget, testProg *widget.Entry
	testResult           *widget.Label
	content              fyne.CanvasObject
	loading              bool // set() is filling the fields: no change callbacks
	// onTested, if set, gets each test box answer on the Fyne thread (tests).
	onTested func(string)
}

func newRulesEditor(list []rules.Rule, file string, onChange func(), current func() config.Config) *rulesEditor {
	e := &rulesEditor{onChange: onChange, current: current}
	e.listEdits = listEdits[rules.Rule]{selected: -1, fill: e.fill, changed: e.changed}
	e.rows = widget.NewList(
		func() int { return len(e.list) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(ruleArrows.Replace(fmt.Sprintf("%d. %s", i+1, e.list[i])))
		})
	e.rows.OnSelected = func(i widget.ListItemID) { e.selectRow(i) }
	e.rows.OnUnselected = func(widget.ListItemID) {}
	e.kind = widget.NewSelect(ruleKinds, func(string) { e.edited() })
	e.action = widget.NewSelect(ruleActions, func(string) { e.edited() })
	e.value = widget.NewEntry()
	e.value.SetPlaceHolder("example.com, 10.0.0.0/8, 443, 8000-8999, firefox…")
	e.value.OnChanged = func(string) { e.edited() }
	e.exit = widget.NewEntry()
	e.exit.SetPlaceHolder("exit (optional)")
	e.exit.OnChanged = func(string) { e.edited() }
	e.resolve = widget.NewCheck("resolve names", func(bool) { e.edited() })
	e.problem = widget.NewLabel("")
	e.problem.Importance = widget.DangerImportance
	e.problem.Wrapping = fyne.TextWrapWord
	e.problem.Hide()
	e.add = widget.NewButton("Add", e.addRule)
	e.replace = widget.NewButton("Update", e.updateRule)
	e.buttons()
	e.file = widget.NewEntry()
	e.file.SetPlaceHolder("optional: a rules file (JSON, Clash rules, Clash config)")
	e.file.OnChanged = func(string) {
		if !e.loading {
			e.onChange()
		}
	}
	e.importPath = widget.NewEntry()
	e.importPath.SetPlaceHolder("a file whose rules to add to the list (JSON or Clash)")
	e.importNote = noteLabel()
	e.testTarget = widget.NewEntry()
	e.testTarget.SetPlaceHolder("host:port")
	e.testProg = widget.NewEntry()
	e.testProg.SetPlaceHolder("program (optional)")
	e.testResult = widget.NewLabel("")
	e.testResult.Wrapping = fyne.TextWrapWord

	e.set(list, file)
	fields := container.NewGridWithColumns(3, e.kind, e.action, e.exit)
	e.content = container.NewVBox(
		container.NewStack(listHeight(180), e.rows),
		fields,
		container.NewBorder(nil, nil, nil, e.resolve, e.value),
		e.problem,
		container.NewHBox(e.add, e.replace, e.del, e.up, e.down),
		e.file,
		container.NewBorder(nil, nil, nil, widget.NewButton("Import", func() {
			if p := strings.TrimSpace(e.importPath.Text); p != "" {
				e.importFile(p)
			}
		}), e.importPath),
		e.importNote,
		container.NewBorder(nil, nil, nil, widget.NewButton("Test", e.test),
			container.NewGridWithColumns(2, e.testTarget, e.testProg)),
		e.testResult,
	)
	return e
}

// set shows list and file, nothing selected.
func (e *rulesEditor) set(list []rules.Rule, file string) {
	e.loading = true
	defer func() { e.loading = false }()
	e.list = append([]rules.Rule(nil), list...)
	e.selected = -1
	e.rows.UnselectAll()
	e.rows.Refresh()
	e.file.SetText(file)
	e.fill(rules.Rule{Kind: rules.KindDomainSuffix, Action: rules.ActionDirect})
	e.updateButtons()
}

// rules is the list as edited (never nil: an empty list saves as none).
func (e *rulesEditor) rules() []rules.Rule {
	if len(e.list) == 0 {
		return nil
	}
	return append([]rules.Rule(nil), e.list...)
}

func (e *rulesEditor) fileText() string { return strings.TrimSpace(e.file.Text) }

func (e *rulesEditor) fill(r rules.Rule) {
	was := e.loading
	e.loading = true
	e.kind.SetSelected(r.Kind)
	e.action.SetSelected(r.Action)
	e.value.SetText(r.Value)
	e.exit.SetText(r.Exit)
	e.resolve.SetChecked(r.Resolve)
	e.loading = was
	e.check()
}

// fields is the rule the fields hold, and what is wrong with it.
func (e *rulesEditor) fields() (rules.Rule, error) {
	r := rules.Rule{Kind: e.kind.Selected, Value: e.value.Text, Action: e.action.Selected,
		Exit: e.exit.Text, Resolve: e.resolve.Checked}
	n, err := r.Normalize()
	if err != nil {
		return r, err
	}
	if n.Kind == rules.KindRuleSet {
		// The provider's file is found beside the rules file; say which
		// name it looks for.
		n.Value = strings.TrimSpace(n.Value)
	}
	return n, nil
}

func (e *rulesEditor) check() bool {
	_, err := e.fields()
	// Nothing typed yet is no problem to point at (Add stays disabled).
	blank := strings.TrimSpace(e.value.Text) == "" && e.kind.Selected != rules.KindMatch
	if err != nil && !blank {
		e.problem.SetText(err.Error())
		e.problem.Show()
	} else {
		e.problem.Hide()
	}
	e.updateButtons()
	return err == nil
}

func (e *rulesEditor) edited() {
	if !e.loading {
		e.check()
	}
}

func (e *rulesEditor) updateButtons() {
	_, err := e.fields()
	setWidgetEnabled(e.add, err == nil)
	setWidgetEnabled(e.replace, err == nil && e.sel())
	e.enableMoves()
}

// addRule puts the fields' rule after the selected one (at the end when
// none is), and selects it.
func (e *rulesEditor) addRule() {
	r, err := e.fields()
	if err != nil {
		return
	}
	at := e.addAt()
	e.list = slices.Insert(e.list, at, r)
	e.changed(at)
}

func (e *rulesEditor) updateRule() {
	r, err := e.fields()
	if err != nil || !e.sel() {
		return
	}
	e.list[e.selected] = r
	e.changed(e.selected)
}

// changed shows the list after an edit with row sel selected (-1: none).
func (e *rulesEditor) changed(sel int) {
	e.reselect(sel)
	e.updateButtons()
	e.onChange()
}

// importFile appends the rules of a file to the list, all or nothing: a
// file with an error is reported (the first few problems, by line) and
// not imported.
func (e *rulesEditor) importFile(path string) {
	src, err := rules.LoadFile(path)
	if err != nil {
		e.importNote.SetText("Not imported: " + firstProblems(err, 3))
		e.importNote.Show()
		return
	}
	if len(src.Rules) == 0 {
		e.importNote.SetText("No rules in " + path + ": a provider file is used through a rule-set rule; or set it as the rules file.")
		e.importNote.Show()
		return
	}
	for _, r := range src.Rules {
		if r.Kind == rules.KindRuleSet {
			// The provider stays the one found beside the imported file,
			// wherever the config's rules are read from.
			if p, err := rules.ProviderPath(filepath.Dir(path), r); err == nil {
				r.Path, _ = filepath.Abs(p) // Abs fails only without a working directory; p is then kept
				if r.Path == "" {
					r.Path = p
				}
			}
		}
		e.list = append(e.list, r)
	}
	e.importNote.SetText(fmt.Sprintf("Imported %d rules from %s.", len(src.Rules), path))
	e.importNote.Show()
	e.changed(-1)
}

// firstProblems is the first n problems of a joined error, and how many
// more there are.
func firstProblems(err error, n int) string {
	var all []error
	var j interface{ Unwrap() []error }
	for errors.As(err, &j) {
		all = j.Unwrap()
		if len(all) != 1 {
			break
		}
		err = all[0]
	}
	if len(all) <= 1 {
		return err.Error()
	}
	var parts []string
	for _, e := range all[:min(n, len(all))] {
		parts = append(parts, e.Error())
	}
	if len(all) > n {
		parts = append(parts, fmt.Sprintf("and %d more", len(all)-n))
	}
	return strings.Join(parts, "; ")
}

// test answers the test box under the rules being edited.
func (e *rulesEditor) test() {
	cfg := e.current()
	target, prog := strings.TrimSpace(e.testTarget.Text), strings.TrimSpace(e.testProg.Text)
	e.testResult.SetText("Testing…")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ruleTestTimeout)
		defer cancel()
		res, err := app.TestRuleIn(ctx, cfg, target, prog)
		text := ruleArrows.Replace(res.Why)
		if err != nil {
			text = "Cannot test: " + firstProblems(err, 2)
		}
		fyne.Do(func() {
			e.testResult.SetText(text)
			if e.onTested != nil {
				e.onTested(text)
			}
		})
	}()
}
