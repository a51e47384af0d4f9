package autostart

import (
	"errors"
	"fmt"
	"strings"
)

// desktopFormat is the XDG autostart entry (Desktop Entry Specification 1.0).
var desktopFormat = format{render: desktopEntry, parse: parseDesktopEntry}

const (
	desktopHead = "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Version=1.0\n" +
		"Name=Porthole\n" +
		"Comment=Start Porthole in the system tray at login\n" +
		"Exec="
	desktopTail = "\n" +
		"Icon=porthole\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n"
)

// desktopEntry is the content of porthole.desktop for the command.
func desktopEntry(exe string, args []string) (string, error) {
	exec, err := desktopExec(exe, args)
	if err != nil {
		return "", err
	}
	return desktopHead + exec + desktopTail, nil
}

// parseDesktopEntry returns the command of an entry laid out as desktopEntry
// writes it. Anything else is an error (the entry is not ours).
func parseDesktopEntry(content string) (string, []string, error) {
	rest, ok := strings.CutPrefix(content, desktopHead)
	if !ok {
		return "", nil, errors.New("not Porthole's desktop entry header")
	}
	exec, ok := strings.CutSuffix(rest, desktopTail)
	if !ok || strings.Contains(exec, "\n") {
		return "", nil, errors.New("not Porthole's desktop entry keys")
	}
	argv, err := parseDesktopExec(exec)
	if err != nil {
		return "", nil, err
	}
	if len(argv) == 0 {
		return "", nil, errors.New("empty Exec")
	}
	return argv[0], argv[1:], nil
}

// execReserved are the characters that make the spec require quoting an
// argument of Exec.
const execReserved = " \t\n\"'\\><~|&;$*?#()`"

// execQuoteArg quotes one argument for the Exec key, before the key file's own
// string escaping (see desktopExec):
//   - an argument with none of the reserved characters (and not empty) is
//     written as is;
//   - otherwise it is put in double quotes, inside which the double quote,
//     backtick, dollar sign and backslash are preceded by a backslash;
//   - in both cases a literal percent sign is doubled ("%%"), since %x are
//     field codes.
func execQuoteArg(a string) string {
	var b strings.Builder
	quote := a == "" || strings.ContainsAny(a, execReserved)
	if quote {
		b.WriteByte('"')
	}
	for _, r := range a {
		switch {
		case r == '%':
			b.WriteString("%%")
		case quote && strings.ContainsRune("\"`$\\", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	if quote {
		b.WriteByte('"')
	}
	return b.String()
}

// desktopExec is the value of the Exec key as written in the file: the quoted
// arguments joined by spaces, then escaped as a key file string, which
// doubles every backslash (so a literal backslash in a quoted argument is
// four backslashes in the file, as the spec says). Control characters are
// refused rather than escaped (\n, \t): no launcher needs them in a path.
//
// Known limit: GLib (GNOME's autostart) checks that the program exists
// before it expands %%, so it refuses an entry whose executable path holds a
// '%'; the spec gives no other way to write one. Arguments with '%' work.
func desktopExec(exe string, args []string) (string, error) {
	if err := checkCommand(exe, args); err != nil {
		return "", err
	}
	parts := make([]string, 0, 1+len(args))
	parts = append(parts, execQuoteArg(exe))
	for _, a := range args {
		parts = append(parts, execQuoteArg(a))
	}
	return strings.ReplaceAll(strings.Join(parts, " "), `\`, `\\`), nil
}

// unescapeKeyString undoes the key file's string escapes (\s \n \t \r \\).
func unescapeKeyString(v string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(v) {
			return "", errors.New("value ends with a backslash")
		}
		switch v[i] {
		case 's':
			b.WriteByte(' ')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			return "", fmt.Errorf("unknown escape \\%c", v[i])
		}
	}
	return b.String(), nil
}

// parseDesktopExec splits an Exec value as written in the file into the
// arguments, the inverse of desktopExec. It refuses field codes other than
// %% and reserved characters outside quotes (neither is written by us).
func parseDesktopExec(v string) ([]string, error) {
	s, err := unescapeKeyString(v)
	if err != nil {
		return nil, err
	}
	var (
		args    []string
		cur     strings.Builder
		inArg   bool // cur holds an argument, possibly empty ("")
		inQuote bool
	)
	// Every iteration advances i by at least one byte.
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+1 == len(s) || s[i+1] != '%' {
				return nil, errors.New("field code in Exec")
			}
			i++
			cur.WriteByte('%')
			inArg = true
		case inQuote && c == '\\':
			if i+1 == len(s) || !strings.ContainsRune("\"`$\\", rune(s[i+1])) {
				return nil, errors.New("invalid backslash escape in quoted argument")
			}
			i++
			cur.WriteByte(s[i])
		case inQuote && c == '"':
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == ' ':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '"':
			if inArg {
				return nil, errors.New("quote inside an argument")
			}
			inQuote, inArg = true, true
		case strings.IndexByte(execReserved, c) >= 0:
			return nil, fmt.Errorf("reserved character %q outside quotes", c)
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote in Exec")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
