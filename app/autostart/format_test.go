package autostart

import (
	"encoding/xml"
	"errors"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"porthole/internal/childproc"
)

func TestExecQuoteArg(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/porthole", "/usr/bin/porthole"},
		{"--flag=value", "--flag=value"},
		{"/home/josé/bin/porthole", "/home/josé/bin/porthole"},
		{"", `""`},
		{"/opt/My Apps/porthole", `"/opt/My Apps/porthole"`},
		{"100%", "100%%"},
		{"/opt/100% sure/p", `"/opt/100%% sure/p"`},
		{"%f", "%%f"},
		{`a"b`, `"a\"b"`},
		{"a`b", "\"a\\`b\""},
		{"a$b", `"a\$b"`},
		{`a\b`, `"a\\b"`},
		{"a'b", `"a'b"`},
		{"a>b", `"a>b"`},
		{"a<b", `"a<b"`},
		{"~/p", `"~/p"`},
		{"a|b", `"a|b"`},
		{"a&b", `"a&b"`},
		{"a;b", `"a;b"`},
		{"a*b", `"a*b"`},
		{"a?b", `"a?b"`},
		{"a#b", `"a#b"`},
		{"a(b)", `"a(b)"`},
		{`/o p/$HOME\"x"%`, `"/o p/\$HOME\\\"x\"%%"`},
	}
	for _, tt := range tests {
		if got := execQuoteArg(tt.in); got != tt.want {
			t.Errorf("execQuoteArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	// Every reserved character forces quotes.
	for _, r := range execReserved {
		if r == '\t' || r == '\n' {
			continue // control characters are refused before quoting
		}
		if got := execQuoteArg("a" + string(r)); !strings.HasPrefix(got, `"`) {
			t.Errorf("reserved %q not quoted: %s", r, got)
		}
	}
}

// commandCase is a program and its arguments, and the command line that
// should start it.
type commandCase struct {
	exe  string
	args []string
	want string
}

// checkCommandLines checks that format writes each case's command line,
// and that parse, the way the launcher reads it, gives back the program
// and its arguments.
func checkCommandLines(t *testing.T, formatName string, format func(string, []string) (string, error),
	parseName string, parse func(string) ([]string, error), tests []commandCase) {
	t.Helper()
	for _, tt := range tests {
		got, err := format(tt.exe, tt.args)
		if err != nil {
			t.Errorf("%s(%q, %q): %v", formatName, tt.exe, tt.args, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s(%q, %q) = %s, want %s", formatName, tt.exe, tt.args, got, tt.want)
		}
		argv, err := parse(got)
		if err != nil {
			t.Errorf("%s(%s): %v", parseName, got, err)
			continue
		}
		if want := append([]string{tt.exe}, tt.args...); !slices.Equal(argv, want) {
			t.Errorf("%s(%s) = %q, want %q", parseName, got, argv, want)
		}
	}
}

func TestDesktopExec(t *testing.T) {
	// want: as written in the file, after key-file string escaping.
	tests := []commandCase{
		{"/usr/bin/porthole", nil, "/usr/bin/porthole"},
		{"/usr/bin/porthole", []string{"--tray", ""}, `/usr/bin/porthole --tray ""`},
		{"/opt/My Apps/porthole", []string{"a b"}, `"/opt/My Apps/porthole" "a b"`},
		// A literal backslash in a quoted argument is four in the file.
		{`/opt/a\b/porthole`, nil, `"/opt/a\\\\b/porthole"`},
		// \$ of the quoting becomes \\$ in the file.
		{"/opt/$x/porthole", nil, `"/opt/\\$x/porthole"`},
		{`/opt/"q"/porthole`, nil, `"/opt/\\"q\\"/porthole"`},
		{"/opt/50%/porthole", []string{"%u"}, "/opt/50%%/porthole %%u"},
	}
	checkCommandLines(t, "desktopExec", desktopExec, "parseDesktopExec", parseDesktopExec, tests)
}

func TestInvalidCommands(t *testing.T) {
	bad := []struct {
		exe  string
		args []string
	}{
		{"", nil},
		{"/opt/a\nb", nil},
		{"/opt/a\tb", nil},
		{"/opt/p", []string{"x\x00y"}},
		{"/opt/p", []string{"\x7f"}},
		{"/opt/\xff/p", nil},
	}
	renders := map[string]func(string, []string) (string, error){
		"desktop": desktopEntry, "plist": launchAgentPlist, "windows": windowsRunCommand,
	}
	for name, render := range renders {
		for _, b := range bad {
			if _, err := render(b.exe, b.args); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("%s(%q, %q): error %v, want ErrInvalidCommand", name, b.exe, b.args, err)
			}
		}
	}
	if _, err := launchAgentPlist("/opt/\uFFFE", nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("plist with U+FFFE: %v, want ErrInvalidCommand", err)
	}
	if _, err := windowsRunCommand(`C:\a"b.exe`, nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("windows exe with a quote: %v, want ErrInvalidCommand", err)
	}
	long := `C:\` + strings.Repeat("x", 300) + `.exe`
	if _, err := windowsRunCommand(long, nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("windows 300-character command: %v, want ErrInvalidCommand", err)
	}
}

func TestParseDesktopExecRejects(t *testing.T) {
	for _, v := range []string{
		"/usr/bin/p %f",        // field code
		`"/usr/bin/p`,          // unterminated quote
		`"/usr/bin/\p"`,        // invalid key-file escape
		`"/usr/bin/\\p"`,       // invalid escape inside quotes
		`/usr/bin/p a&b`,       // reserved character outside quotes
		`/usr/bin/p x"a b"`,    // quote inside an argument
		`/usr/bin/p \`,         // trailing backslash
		`/usr/bin/p "a\\\\"b"`, // text after a closed quote → quote in argument
	} {
		if argv, err := parseDesktopExec(v); err == nil {
			t.Errorf("parseDesktopExec(%s) = %q, want an error", v, argv)
		}
	}
}

const goldenDesktop = `[Desktop Entry]
Type=Application
Version=1.0
Name=Porthole
Comment=Start Porthole in the system tray at login
Exec="/opt/My Apps/porthole" --x
Icon=porthole
Terminal=false
X-GNOME-Autostart-enabled=true
`

func TestDesktopEntryGolden(t *testing.T) {
	got, err := desktopEntry("/opt/My Apps/porthole", []string{"--x"})
	if err != nil {
		t.Fatal(err)
	}
	if got != goldenDesktop {
		t.Errorf("desktop entry:\n%s\nwant:\n%s", got, goldenDesktop)
	}
}

func TestWindowsQuoteArg(t *testing.T) {
	tests := []struct{ in, want string }{
		{"simple", "simple"},
		{"", `""`},
		{"a b", `"a b"`},
		{"a\tb", "\"a\tb\""},
		{`a"b`, `"a\"b"`},
		{`a\b`, `a\b`},
		{`a\\b`, `a\\b`},
		{`a\"b`, `"a\\\"b"`},
		{`a\\"b`, `"a\\\\\"b"`},
		{`a b\`, `"a b\\"`},
		{`a b\\`, `"a b\\\\"`},
		{`C:\Program Files\`, `"C:\Program Files\\"`},
		{`\\server\share\a b`, `"\\server\share\a b"`},
		{`"`, `"\""`},
		{`--name=x y`, `"--name=x y"`},
		{"%APPDATA%", "%APPDATA%"},
	}
	for _, tt := range tests {
		if got := windowsQuoteArg(tt.in); got != tt.want {
			t.Errorf("windowsQuoteArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestWindowsRunCommand(t *testing.T) {
	tests := []commandCase{
		{`C:\Program Files\Porthole\porthole.exe`, nil, `"C:\Program Files\Porthole\porthole.exe"`},
		{`C:\Users\Zoë\AppData\Local\Porthole\porthole.exe`, []string{"--tray"}, `"C:\Users\Zoë\AppData\Local\Porthole\porthole.exe" --tray`},
		{`C:\p\porthole.exe`, []string{"a b", `c"d`, "", `e\`}, `"C:\p\porthole.exe" "a b" "c\"d" "" e\`},
		{`C:\p\porthole.exe`, []string{`x y\`}, `"C:\p\porthole.exe" "x y\\"`},
	}
	checkCommandLines(t, "windowsRunCommand", windowsRunCommand, "parseWindowsCommandLine", func(line string) ([]string, error) {
		exe, args, err := parseWindowsCommandLine(line)
		return append([]string{exe}, args...), err
	}, tests)
}

// TestParseWindowsCommandLine checks the parser against the examples of
// Microsoft's "Parsing C command-line arguments".
func TestParseWindowsCommandLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`"a b c" d e`, []string{"a b c", "d", "e"}},
		{`"ab\"c" "\\" d`, []string{`ab"c`, `\`, "d"}},
		{`a\\\b d"e f"g h`, []string{`a\\\b`, "de fg", "h"}},
		{`a\\\"b c d`, []string{`a\"b`, "c", "d"}},
		{`a\\\\"b c" d e`, []string{`a\\b c`, "d", "e"}},
	}
	for _, tt := range tests {
		exe, args, err := parseWindowsCommandLine(`"C:\p.exe" ` + tt.in)
		if err != nil || exe != `C:\p.exe` || !reflect.DeepEqual(args, tt.want) {
			t.Errorf("parse %s = %q %q %v, want %q", tt.in, exe, args, err, tt.want)
		}
	}
	for _, bad := range []string{`C:\p.exe`, `"C:\p.exe`, `"C:\p.exe"x`, `"C:\p.exe" "a`} {
		if _, _, err := parseWindowsCommandLine(bad); err == nil {
			t.Errorf("parseWindowsCommandLine(%s): no error", bad)
		}
	}
}

const goldenPlist = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>app.porthole.Porthole</string>
	<key>ProgramArguments</key>
	<array>
		<string>/Applications/Tom &amp; Jerry&#39;s/Porthole.app/Contents/MacOS/porthole</string>
		<string>&lt;a&gt; &#34;b&#34;</string>
		<string></string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`

var (
	plistExe  = "/Applications/Tom & Jerry's/Porthole.app/Contents/MacOS/porthole"
	plistArgs = []string{`<a> "b"`, ""}
)

func TestLaunchAgentPlistGolden(t *testing.T) {
	got, err := launchAgentPlist(plistExe, plistArgs)
	if err != nil {
		t.Fatal(err)
	}
	if got != goldenPlist {
		t.Fatalf("plist:\n%s\nwant:\n%s", got, goldenPlist)
	}

	// The structure, read back with plain encoding/xml: a <plist
	// version="1.0"> holding one <dict> of key/value elements in order.
	var doc struct {
		XMLName xml.Name `xml:"plist"`
		Version string   `xml:"version,attr"`
		Dict    struct {
			Items []struct {
				XMLName xml.Name
				Text    string   `xml:",chardata"`
				Strings []string `xml:"string"`
			} `xml:",any"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatalf("encoding/xml cannot read the plist: %v", err)
	}
	if doc.Version != "1.0" {
		t.Errorf("plist version %q", doc.Version)
	}
	var shape []string
	for _, it := range doc.Dict.Items {
		switch it.XMLName.Local {
		case "key", "string":
			shape = append(shape, it.XMLName.Local+":"+it.Text)
		case "array":
			shape = append(shape, "array:"+strings.Join(it.Strings, "|"))
		default:
			shape = append(shape, it.XMLName.Local)
		}
	}
	want := []string{
		"key:Label", "string:" + LaunchAgentLabel,
		"key:ProgramArguments", "array:" + plistExe + `|<a> "b"|`,
		"key:RunAtLoad", "true",
		"key:ProcessType", "string:Interactive",
	}
	if !reflect.DeepEqual(shape, want) {
		t.Errorf("plist structure\n%q\nwant\n%q", shape, want)
	}

	// And with our own reader, which the ownership check uses.
	top, err := decodePlist(got)
	if err != nil {
		t.Fatal(err)
	}
	wantTop := map[string]any{
		"Label":            LaunchAgentLabel,
		"ProgramArguments": []any{plistExe, `<a> "b"`, ""},
		"RunAtLoad":        true,
		"ProcessType":      "Interactive",
	}
	if !reflect.DeepEqual(top, wantTop) {
		t.Errorf("decodePlist = %#v, want %#v", top, wantTop)
	}
}

// TestLaunchAgentPlistPython cross-checks with an independent plist reader
// (Python's plistlib) when python3 is installed.
func TestLaunchAgentPlistPython(t *testing.T) {
	py := childproc.Need(t, "python3", "skipping the plistlib cross-check")
	got, err := launchAgentPlist(plistExe, plistArgs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", `import json, plistlib, sys
print(json.dumps(plistlib.loads(sys.stdin.buffer.read()), sort_keys=True))`)
	cmd.Stdin = strings.NewReader(got)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plistlib cannot read the plist: %v", err)
	}
	want := `{"Label": "app.porthole.Porthole", "ProcessType": "Interactive", "ProgramArguments": ` +
		`["/Applications/Tom & Jerry's/Porthole.app/Contents/MacOS/porthole", "<a> \"b\"", ""], "RunAtLoad": true}` + "\n"
	if string(out) != want {
		t.Errorf("plistlib read\n%s\nwant\n%s", out, want)
	}
}

func TestDecodePlistRejects(t *testing.T) {
	for _, doc := range []string{
		``,
		`<dict/>`,
		`<plist version="1.0"></plist>`,
		`<plist version="1.0"><dict><key>a</key></dict></plist>`,
		`<plist version="1.0"><dict><string>a</string></dict></plist>`,
		`<plist version="1.0"><dict><key>a</key><true/><key>a</key><true/></dict></plist>`,
		`<plist version="1.0"><dict/><dict/></plist>`,
		`<plist version="1.0"><dict>text</dict></plist>`,
		`<plist version="1.0"><blob/></plist>`,
		`<plist version="1.0"><dict></plist>`,
		`<plist version="1.0">` + strings.Repeat("<array>", 40) + strings.Repeat("</array>", 40) + `</plist>`,
	} {
		if v, err := decodePlist(doc); err == nil {
			t.Errorf("decodePlist(%s) = %#v, want an error", doc, v)
		}
	}
	for _, doc := range []string{
		`<plist version="1.0"><dict><key>ProgramArguments</key><array/></dict></plist>`,
		`<plist version="1.0"><dict><key>ProgramArguments</key><array><true/></array></dict></plist>`,
		`<plist version="1.0"><array/></plist>`,
	} {
		if _, _, err := parseLaunchAgent(doc); err == nil {
			t.Errorf("parseLaunchAgent(%s): no error", doc)
		}
	}
}

// roundTrip checks that a format reads back what it writes.
func roundTrip(t *testing.T, f format, exe string, args []string) {
	t.Helper()
	content, err := f.render(exe, args)
	if err != nil {
		if !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("render(%q, %q): error %v does not wrap ErrInvalidCommand", exe, args, err)
		}
		return
	}
	gotExe, gotArgs, err := f.parse(content)
	if err != nil {
		t.Fatalf("parse of render(%q, %q) = %s: %v", exe, args, content, err)
	}
	if gotExe != exe || !slices.Equal(gotArgs, args) {
		t.Fatalf("round trip of %q %q gave %q %q (content %s)", exe, args, gotExe, gotArgs, content)
	}
	if !f.owned(content) {
		t.Fatalf("content for %q %q is not owned: %s", exe, args, content)
	}
}

var fuzzSeeds = [][3]string{
	{"/usr/bin/porthole", "", ""},
	{"/opt/My Apps/porthole", "a b", `c"d`},
	{`/opt/a\b$c%d`, "`x`", `\\"`},
	{"/opt/ünï cødé/p", "%%f", `trailing\`},
	{`C:\Program Files\p.exe`, `x y\\`, `\"`},
	{"/o/p", "", "'single' #hash ~tilde (paren) ;semi |pipe &amp *star ?q <lt >gt"},
}

// FuzzRoundTrip checks, for all three formats, that every command accepted is
// read back unchanged and recognised as ours.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, exe, a1, a2 string) {
		for _, args := range [][]string{nil, {a1}, {a1, a2}} {
			roundTrip(t, desktopFormat, exe, args)
			roundTrip(t, plistFormat, exe, args)
			roundTrip(t, runFormat, exe, args)
		}
	})
}

// FuzzParse feeds arbitrary entries to the readers and the ownership check,
// which must not panic on anything a user or another program may write.
func FuzzParse(f *testing.F) {
	f.Add(goldenDesktop)
	f.Add(goldenPlist)
	f.Add(`"C:\p.exe" "a b\\" c\"d`)
	f.Fuzz(func(t *testing.T, content string) {
		for _, fm := range []format{desktopFormat, plistFormat, runFormat} {
			_ = fm.owned(content) // must return, true or false
		}
	})
}
