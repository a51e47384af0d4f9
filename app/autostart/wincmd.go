package autostart

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// RunValueName is the name of Porthole's value under
// HKCU\Software\Microsoft\Windows\CurrentVersion\Run on Windows.
const RunValueName = "Porthole"

// maxRunCommand is the longest command line Windows runs from a Run key (in
// UTF-16 code units), per "Run and RunOnce Registry Keys".
const maxRunCommand = 260

// runFormat is the Windows Run value.
var runFormat = format{render: windowsRunCommand, parse: parseWindowsCommandLine}

// windowsRunCommand is the Run value for the command: the executable always
// in double quotes (a path cannot contain one, and the program name is parsed
// without backslash escapes), then each argument quoted by
// windowsQuoteArg, separated by single spaces.
func windowsRunCommand(exe string, args []string) (string, error) {
	if err := checkCommand(exe, args); err != nil {
		return "", err
	}
	if strings.ContainsRune(exe, '"') {
		return "", fmt.Errorf("%w: executable %q contains a double quote", ErrInvalidCommand, exe)
	}
	var b strings.Builder
	b.WriteByte('"')
	b.WriteString(exe)
	b.WriteByte('"')
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(windowsQuoteArg(a))
	}
	cmd := b.String()
	if n := len(utf16.Encode([]rune(cmd))); n > maxRunCommand {
		return "", fmt.Errorf("%w: command line is %d characters, Windows runs at most %d from the Run key", ErrInvalidCommand, n, maxRunCommand)
	}
	return cmd, nil
}

// windowsQuoteArg quotes one argument so that CommandLineToArgvW and the C
// runtime read it back unchanged: an argument without space, tab, newline,
// vertical tab or double quote (and not empty) is written as is; otherwise
// it is put in double quotes, a double quote inside becomes \", and
// backslashes are doubled where they precede a double quote (including the
// closing one); other backslashes stay single.
func windowsQuoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\n\v\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
			slashes = 0
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
			slashes = 0
		}
		if c != '\\' {
			b.WriteByte(c)
		}
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

// parseWindowsCommandLine splits a command line the way CommandLineToArgvW
// does for what windowsRunCommand writes: a quoted program name (no escapes
// in it), then arguments where 2n backslashes before a quote give n
// backslashes and toggle quoting, 2n+1 give n backslashes and a literal
// quote, and other backslashes are literal.
func parseWindowsCommandLine(cmd string) (string, []string, error) {
	rest, ok := strings.CutPrefix(cmd, `"`)
	if !ok {
		return "", nil, errors.New("program name is not quoted")
	}
	exe, rest, ok := strings.Cut(rest, `"`)
	if !ok {
		return "", nil, errors.New("program name quote not closed")
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", nil, errors.New("text right after the program name")
	}
	var (
		args    []string
		cur     strings.Builder
		inArg   bool
		inQuote bool
	)
	// Every iteration advances i by at least one byte.
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(rest) && rest[i] == '\\' {
				n++
				i++
			}
			if i < len(rest) && rest[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
				} else {
					inQuote = !inQuote
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
				i-- // the loop's i++ moves to the byte after the backslashes
			}
			inArg = true
		case c == '"':
			inQuote = !inQuote
			inArg = true
		case !inQuote && (c == ' ' || c == '\t'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inQuote {
		return "", nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return exe, args, nil
}
