package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"porthole/app/internal/atomicfile"
)

// Load reads path. It never moves or writes the file: a file Porthole
// cannot use stays where it is until the user decides (SetAside).
//
//   - No file: the defaults and nil.
//   - A usable file: its settings over the defaults, and nil.
//   - A usable file that also holds fields this version does not know (a
//     newer Porthole wrote them): the known settings and an
//     *UnknownFieldsError, which wraps ErrUnknownFields. A warning: run
//     with the settings returned.
//   - A file that cannot be used (not JSON, a value of the wrong type or
//     invalid, an unknown field that looks like a misspelt one whose value
//     is therefore missing): the defaults and a *FileError wrapping
//     ErrInvalid that names the file, the field and its line. The caller
//     must not run on the defaults unasked: the file may say tunnel mode.
//   - A file that cannot be read: the defaults and the read error.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Default(), fmt.Errorf("reading config %s: %w", path, err)
	}
	cfg, unknown, err := parse(data)
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			fe.Path = path
		}
		return Default(), err
	}
	if len(unknown) > 0 {
		return cfg, &UnknownFieldsError{Path: path, Fields: unknown}
	}
	return cfg, nil
}

// parse reads a config file's content over the defaults. A *FileError it
// returns has no Path yet.
func parse(data []byte) (Config, []UnknownField, error) {
	cfg := Default()
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, nil, decodeError(data, err)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		// null decodes into nothing: it must not mean the defaults.
		return Config{}, nil, &FileError{Line: 1, Column: 1, Err: fmt.Errorf("%w: the file holds no object of settings", ErrInvalid)}
	}
	keys := topLevelKeys(data)
	var unknown []UnknownField
	for _, k := range keys {
		if knownField(k.name) != "" {
			continue
		}
		line, col := lineColumn(data, k.offset)
		if meant := misspeltField(k.name, keys); meant != "" {
			return Config{}, nil, &FileError{Field: k.name, Line: line, Column: col,
				Err: fmt.Errorf("%w: unknown field %q: is it a misspelt %q? Porthole does not guess, as that setting would be missing", ErrInvalid, k.name, meant)}
		}
		unknown = append(unknown, UnknownField{Name: k.name, Line: line, Column: col})
	}
	if err := cfg.Validate(); err != nil {
		fe := &FileError{Err: err}
		var field *FieldError
		if errors.As(err, &field) {
			fe.Field = field.Field
			for _, k := range keys {
				if strings.EqualFold(k.name, field.Field) {
					fe.Line, fe.Column = lineColumn(data, k.offset)
				}
			}
		}
		return Config{}, nil, fe
	}
	return cfg, unknown, nil
}

// decodeError locates a json.Unmarshal error in data.
func decodeError(data []byte, err error) error {
	fe := &FileError{Err: fmt.Errorf("%w: %w", ErrInvalid, err)}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		fe.Line, fe.Column = lineColumn(data, syntax.Offset-1) // Offset is just past the wrong byte
		fe.Err = fmt.Errorf("%w: not valid JSON: %w", ErrInvalid, err)
	case errors.As(err, &typ):
		fe.Field, _, _ = strings.Cut(typ.Field, ".") // the top-level field
		fe.Line, fe.Column = lineColumn(data, typ.Offset)
		for _, k := range topLevelKeys(data) {
			if strings.EqualFold(k.name, fe.Field) {
				fe.Line, fe.Column = lineColumn(data, k.offset)
			}
		}
		if fe.Field == "" {
			fe.Err = fmt.Errorf("%w: the file holds a JSON %s, not an object of settings", ErrInvalid, typ.Value)
		} else {
			fe.Err = fmt.Errorf("%w: %s: a JSON %s where %s belongs", ErrInvalid, typ.Field, typ.Value, kindWord(typ.Type))
		}
	}
	return fe
}

// kindWord names what a Config field holds, for a person.
func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// key is a top-level name of the file and where it starts.
type key struct {
	name   string
	offset int64
}

// topLevelKeys lists the names of the top-level object of data (valid
// JSON), in order, each with the offset of its opening quote.
func topLevelKeys(data []byte) []key {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []key
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return keys
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
		// The offset is just past the previous token: skip the blanks
		// and the comma before the name.
		for off < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
			off++
		}
		keys = append(keys, key{name: name, offset: off})
	}
	return keys
}

// lineColumn turns a byte offset of data into a 1-based line and column
// (in characters).
func lineColumn(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// knownField is the field name encoding/json reads name into (it matches
// case-insensitively), or "".
func knownField(name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.name
		}
	}
	return ""
}

// misspeltField is the known field an unknown name is most likely a typo
// of, when that field is missing from the file: then the user's value for
// it is lost, and running on its default could send traffic another way
// ("mdoe": "tunnel"). A name a newer Porthole added is not that close to a
// field left out of the file.
func misspeltField(name string, keys []key) string {
	for _, f := range fields {
		present := false
		for _, k := range keys {
			present = present || strings.EqualFold(k.name, f.name)
		}
		limit := 2
		if len(f.name) < 5 {
			limit = 1
		}
		if !present && editDistance(strings.ToLower(name), f.name) <= limit {
			return f.name
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance of a and b: edits,
// where swapping two neighbours counts as one.
func editDistance(a, b string) int {
	r, s := []rune(a), []rune(b)
	d := make([][]int, len(r)+1)
	for i := range d {
		d[i] = make([]int, len(s)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(r); i++ {
		for j := 1; j <= len(s); j++ {
			cost := 1
			if r[i-1] == s[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && r[i-1] == s[j-2] && r[i-2] == s[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(r)][len(s)]
}

// SetAside renames the config file at path to path.SUFFIX-TIMESTAMP (a
// "-N" is added rather than replace an earlier one) and returns the new
// name, so that it is neither read again nor overwritten. The error wraps
// ErrStuck: the file is still in place.
func SetAside(path, suffix string) (string, error) {
	base := fmt.Sprintf("%s.%s-%s", path, suffix, time.Now().Format("20060102-150405"))
	aside := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if n > 100 {
			return "", fmt.Errorf("config %s could not be set aside: too many earlier copies beside it: %w", path, ErrStuck)
		}
		aside = fmt.Sprintf("%s-%d", base, n)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("config %s could not be set aside: %w: %w", path, err, ErrStuck)
	}
	return aside, nil
}

// Save writes cfg to path atomically (temporary file, fsync, rename) with
// mode 0600, creating the directory (0700) if needed.
func Save(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := atomicfile.WriteJSON(path, cfg, 0o600, 0o700); err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	return nil
}
