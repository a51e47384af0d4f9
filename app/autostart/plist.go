package autostart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// LaunchAgentLabel is the launchd label of Porthole's LaunchAgent on macOS,
// the same as the app ID in FyneApp.toml; the plist is
// ~/Library/LaunchAgents/<LaunchAgentLabel>.plist.
const LaunchAgentLabel = "app.porthole.Porthole"

// plistFormat is the macOS LaunchAgent.
var plistFormat = format{render: launchAgentPlist, parse: parseLaunchAgent}

const (
	plistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + LaunchAgentLabel + `</string>
	<key>ProgramArguments</key>
	<array>
`
	plistTail = `	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`
)

// launchAgentPlist is the LaunchAgent property list that runs exe with args
// at login: Label, ProgramArguments (exe first, no shell involved),
// RunAtLoad true and ProcessType Interactive (an app the user sees, not
// throttled like a background job).
func launchAgentPlist(exe string, args []string) (string, error) {
	if err := checkCommand(exe, args); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(plistHead)
	for _, a := range append([]string{exe}, args...) {
		if err := checkXMLChars(a); err != nil {
			return "", err
		}
		b.WriteString("\t\t<string>")
		if err := xml.EscapeText(&b, []byte(a)); err != nil {
			return "", fmt.Errorf("escaping %q: %w", a, err)
		}
		b.WriteString("</string>\n")
	}
	b.WriteString(plistTail)
	return b.String(), nil
}

// checkXMLChars refuses what XML 1.0 cannot hold (xml.EscapeText would
// silently replace it with U+FFFD). Control characters are refused earlier.
func checkXMLChars(s string) error {
	for _, r := range s {
		if r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			return fmt.Errorf("%w: %q contains %U, which XML cannot hold", ErrInvalidCommand, s, r)
		}
	}
	return nil
}

// parseLaunchAgent returns ProgramArguments of a LaunchAgent plist; any plist
// without a non-empty one of strings is an error (the file is not ours).
func parseLaunchAgent(content string) (string, []string, error) {
	top, err := decodePlist(content)
	if err != nil {
		return "", nil, err
	}
	dict, ok := top.(map[string]any)
	if !ok {
		return "", nil, errors.New("plist is not a dict")
	}
	list, ok := dict["ProgramArguments"].([]any)
	if !ok || len(list) == 0 {
		return "", nil, errors.New("plist has no ProgramArguments")
	}
	argv := make([]string, 0, len(list))
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			return "", nil, errors.New("ProgramArguments holds a non-string")
		}
		argv = append(argv, s)
	}
	return argv[0], argv[1:], nil
}

// maxPlistDepth bounds the nesting decodePlist follows.
const maxPlistDepth = 16

// decodePlist reads an XML property list with encoding/xml into Go values:
// dict → map[string]any, array → []any, string/key → string, true/false →
// bool, integer/real/date/data → their text as string. It is enough to check
// what launchAgentPlist writes, not a general plist reader.
func decodePlist(content string) (any, error) {
	d := xml.NewDecoder(strings.NewReader(content))
	// Find <plist>; skip the XML declaration, DOCTYPE, comments, blanks.
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("looking for <plist>: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("root element <%s>, not <plist>", se.Name.Local)
			}
			break
		}
	}
	v, end, err := plistValue(d, 0)
	if err != nil {
		return nil, err
	}
	if end {
		return nil, errors.New("empty <plist>")
	}
	// Only </plist> and then the end of the document may follow.
	if _, end, err := plistValue(d, 0); err != nil || !end {
		return nil, errors.New("<plist> holds more than one value")
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if err != nil {
			return nil, err
		}
		if _, ok := tok.(xml.StartElement); ok {
			return nil, errors.New("content after </plist>")
		}
	}
}

// plistValue reads the next value element; end is true when the enclosing
// element ends instead.
func plistValue(d *xml.Decoder, depth int) (v any, end bool, err error) {
	if depth > maxPlistDepth {
		return nil, false, errors.New("plist nested too deeply")
	}
	var se xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, false, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, true, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, false, fmt.Errorf("stray text %q", t)
			}
			continue
		case xml.StartElement:
			se = t
		default:
			continue // comments, processing instructions
		}
		break
	}
	switch se.Name.Local {
	case "string", "key", "integer", "real", "date", "data":
		var s string
		if err := d.DecodeElement(&s, &se); err != nil {
			return nil, false, err
		}
		return s, false, nil
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, false, err
		}
		return se.Name.Local == "true", false, nil
	case "array":
		list := []any{}
		for {
			item, end, err := plistValue(d, depth+1)
			if err != nil {
				return nil, false, err
			}
			if end {
				return list, false, nil
			}
			list = append(list, item)
		}
	case "dict":
		m := map[string]any{}
		for {
			k, end, err := plistKey(d)
			if err != nil {
				return nil, false, err
			}
			if end {
				return m, false, nil
			}
			item, end, err := plistValue(d, depth+1)
			if err != nil {
				return nil, false, err
			}
			if end {
				return nil, false, fmt.Errorf("dict key %q has no value", k)
			}
			if _, dup := m[k]; dup {
				return nil, false, fmt.Errorf("dict key %q twice", k)
			}
			m[k] = item
		}
	}
	return nil, false, fmt.Errorf("unknown plist element <%s>", se.Name.Local)
}

// plistKey reads a dict's next <key>; end is true at </dict>.
func plistKey(d *xml.Decoder) (string, bool, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return "", false, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return "", true, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return "", false, fmt.Errorf("stray text %q in dict", t)
			}
		case xml.StartElement:
			if t.Name.Local != "key" {
				return "", false, fmt.Errorf("<%s> where a dict <key> belongs", t.Name.Local)
			}
			var k string
			if err := d.DecodeElement(&k, &t); err != nil {
				return "", false, err
			}
			return k, false, nil
		}
	}
}
