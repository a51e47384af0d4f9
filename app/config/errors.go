package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid wraps every validation error and every error of a config file
// that cannot be used.
var ErrInvalid = errors.New("invalid config")

// ErrStuck is a broken config file that could not be set aside: it is
// still in place, so nothing may be saved over it.
var ErrStuck = errors.New("the broken config file is still in place")

// ErrUnknownFields is wrapped by the error of Load for a file that holds
// fields this version does not know (a newer Porthole wrote them) and is
// otherwise valid: a warning, the known fields are used.
var ErrUnknownFields = errors.New("fields this Porthole does not know")

// FieldError is what is wrong with one field. Field is its JSON name.
type FieldError struct {
	Field string
	err   error // wraps ErrInvalid; its text names the field
}

func (e *FieldError) Error() string { return e.err.Error() }
func (e *FieldError) Unwrap() error { return e.err }

// invalid is a FieldError with the message "invalid config: " + format.
func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// FileError is a config file that cannot be used, with where the problem
// is: the field (its JSON name, "" when the file is not JSON at all) and
// the line and column (1-based, 0 when unknown).
type FileError struct {
	Path         string
	Field        string
	Line, Column int
	Err          error // wraps ErrInvalid
}

func (e *FileError) Error() string {
	where := e.Path
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", e.Path, e.Line, e.Column)
	}
	return fmt.Sprintf("config %s: %v", where, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// UnknownField is a field of the file this version does not know.
type UnknownField struct {
	Name         string
	Line, Column int
}

// UnknownFieldsError lists the unknown fields of an otherwise valid file.
type UnknownFieldsError struct {
	Path   string
	Fields []UnknownField
}

func (e *UnknownFieldsError) Error() string {
	names := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = fmt.Sprintf("%q (line %d)", f.Name, f.Line)
	}
	return fmt.Sprintf("config %s holds %s: %s, perhaps written by a newer Porthole; they are ignored and the other settings are used",
		e.Path, ErrUnknownFields, strings.Join(names, ", "))
}

func (e *UnknownFieldsError) Is(target error) bool { return target == ErrUnknownFields }
