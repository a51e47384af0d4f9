package rules

import (
	"errors"
	"strings"

	"golang.org/x/net/idna"
)

// maxName is the longest DNS name (RFC 1035), without the trailing dot.
const maxName = 253

// NormalizeName returns a host name as rules compare it: lower case, no
// trailing dot, an internationalised name in its ASCII (punycode) form. It
// checks the name's syntax; underscores are allowed (they occur in real
// names, and Clash lists carry them).
func NormalizeName(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if !isASCII(s) {
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return "", errors.New("not a valid internationalised name")
		}
		s = a
	}
	s = strings.ToLower(s)
	if !validName(s) {
		return "", errors.New("not a host name")
	}
	return s, nil
}

func normalizeKeyword(s string) (string, error) {
	s = strings.ToLower(s)
	if s == "" {
		return "", errors.New("a keyword is needed")
	}
	if !isASCII(s) {
		return "", errors.New("a keyword is matched against the ASCII (punycode) name; write it in ASCII")
	}
	for i := 0; i < len(s); i++ {
		if nameClass[s[i]] == 0 {
			return "", errors.New("a keyword has only letters, digits, '-', '_' and '.'")
		}
	}
	return s, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if nameClass[s[i]] == 0 {
				return false
			}
			continue
		}
		label := s[start:i]
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// nameClass maps a byte of a lower-case ASCII name to its Aho-Corasick
// alphabet index (1..nameAlphabet-1); 0 for bytes a name never has.
var nameClass [256]uint8

const nameAlphabet = 26 + 10 + 3 + 1 // letters, digits, '-', '_', '.', plus 0

func init() {
	n := uint8(1)
	for c := 'a'; c <= 'z'; c++ {
		nameClass[c] = n
		n++
	}
	for c := '0'; c <= '9'; c++ {
		nameClass[c] = n
		n++
	}
	for _, c := range "-_." {
		nameClass[c] = n
		n++
	}
}

// hostBytes writes host, normalised, into buf and returns the written
// part; ok is false when host is not a name rules can match. Lower-casing
// and the trailing dot cost nothing extra; only a non-ASCII name allocates
// (its punycode form).
func hostBytes(buf *[maxName + 2]byte, host string) (b []byte, ok bool) {
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	if !isASCII(host) {
		a, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return nil, false
		}
		host = a
	}
	if host == "" || len(host) > maxName {
		return nil, false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)], true
}
