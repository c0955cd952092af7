package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict scanner for the two small JSON objects of a JWS: its protected
// header and its claims. It checks the full grammar of RFC 8259, refuses
// duplicate member names (RFC 7515 §5.2, RFC 7519 §4), bounds nesting and
// member count, and hands out raw member values without decoding them, so
// that numbers are read exactly and nothing is allocated for members that
// are not used. Duplicates are looked for among the members of the header
// and of the claims, while the token is not yet authentic; inside a claim
// value, by checkUnique, only for the claims that are read or kept, once
// the signature verified.

var errJSON = errors.New("invalid JSON")

// errSurrogate refuses a string with an escaped lone surrogate, such as
// "\ud800": it encodes no character (RFC 8259 §8.2), and decoders replace
// it with U+FFFD, so that two different ones would read as the same name.
var errSurrogate = errors.New("invalid Unicode escape: lone surrogate")

// maxDepth bounds the nesting of claim values.
const maxDepth = 32

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString scans the string that starts at b[i] == '"' and returns the
// index after its closing quote and whether it has escapes.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	i++ // opening quote
	start := i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			if !utf8.Valid(b[start:i]) {
				return 0, false, errJSON
			}
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, errJSON
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b, i)
				if !ok {
					return 0, false, errJSON
				}
				i += 6
				switch {
				case utf16.IsSurrogate(r) && r < 0xdc00:
					// A high surrogate must be followed by a low one.
					low, ok := hex4(b, i)
					if !ok || low < 0xdc00 || low > 0xdfff {
						return 0, false, errSurrogate
					}
					i += 6
				case utf16.IsSurrogate(r):
					return 0, false, errSurrogate
				}
			default:
				return 0, false, errJSON
			}
		case c < 0x20:
			return 0, false, errJSON
		default:
			i++
		}
	}
	return 0, false, errJSON
}

// hex4 reads the escape \uXXXX at b[i], if there is one.
func hex4(b []byte, i int) (rune, bool) {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans the number that starts at b[i].
func scanNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return 0, errJSON
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errJSON
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return 0, errJSON
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, nil
}

// scanValue scans the value that starts at b[i] (no leading space) and
// returns the index after it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{':
		if depth >= maxDepth {
			return 0, errJSON
		}
		return skipObject(b, i, depth+1)
	case c == '[':
		if depth >= maxDepth {
			return 0, errJSON
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			end, err := scanValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return 0, errJSON
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errJSON
			}
			i = skipSpace(b, i+1)
		}
	case c == '-' || isDigit(c):
		return scanNumber(b, i)
	case bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, nil
	case bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, nil
	case bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, nil
	}
	return 0, errJSON
}

// errDuplicate and errTooMany distinguish the refusals of members.
var (
	errDuplicate = errors.New("duplicate member")
	errTooMany   = errors.New("too many members")
)

// maxTrackedNames is how many member names of one object are kept on the
// stack to detect duplicates; more go to the heap.
const maxTrackedNames = 64

// skipObject scans the object that starts at b[i] == '{' and returns the
// index after it. It checks syntax only: nested values nobody reads need
// no more, and checkUnique looks for duplicate names in those that are.
func skipObject(b []byte, i, depth int) (int, error) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errJSON
		}
		end, _, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, errJSON
		}
		if i, err = scanValue(b, skipSpace(b, i+1), depth); err != nil {
			return 0, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, errJSON
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return 0, errJSON
		}
		i = skipSpace(b, i+1)
	}
}

// members iterates over the members of a JSON document that must be one
// object and nothing else but white space. It refuses duplicate names,
// compared after unescaping so that "a" and "\u0061" are the same, and
// more than a limit of members. It hands out raw values, so numbers can be
// read exactly. It keeps offsets into the document rather than slices of
// it, and is given the document at each step, so that a document in a
// caller's stack buffer stays there. Use:
//
//	var m members
//	for m.start(doc, limit); m.next(doc); {
//		use(m.name(doc), m.value(doc))
//	}
//	if m.err != nil { ... }
type members struct {
	i     int // where the next member starts; -1 after the last
	limit int
	count int
	names [maxTrackedNames][2]int32 // of names without escapes
	more  [][]byte                  // unescaped names, and names past maxTrackedNames

	nameLo, nameHi, valueLo, valueHi int
	escapedName                      []byte // the current name, when it has escapes
	err                              error
}

func (m *members) start(b []byte, limit int) {
	m.limit = limit
	m.i = skipSpace(b, 0)
	if m.i >= len(b) || b[m.i] != '{' {
		m.err = errJSON
		return
	}
	m.i = skipSpace(b, m.i+1)
	if m.i < len(b) && b[m.i] == '}' {
		m.finish(b, m.i+1)
	}
}

// name returns the current member's name, unescaped.
func (m *members) name(b []byte) []byte {
	if m.escapedName != nil {
		return m.escapedName
	}
	return b[m.nameLo:m.nameHi]
}

// value returns the current member's raw value.
func (m *members) value(b []byte) []byte { return b[m.valueLo:m.valueHi] }

// finish ends the iteration at the end of the object, at end.
func (m *members) finish(b []byte, end int) {
	if skipSpace(b, end) != len(b) {
		m.err = errJSON
	}
	m.i = -1
}

// next moves to the next member of b, reporting false at the end or on
// error.
func (m *members) next(b []byte) bool {
	if m.err != nil || m.i < 0 {
		return false
	}
	i := m.i
	if i >= len(b) || b[i] != '"' {
		m.err = errJSON
		return false
	}
	nameEnd, escaped, err := scanString(b, i)
	if err != nil {
		m.err = err
		return false
	}
	m.nameLo, m.nameHi, m.escapedName = i+1, nameEnd-1, nil
	if escaped {
		if m.escapedName, err = unescape(b[i:nameEnd]); err != nil {
			m.err = err
			return false
		}
	}
	if m.count++; m.count > m.limit {
		m.err = errTooMany
		return false
	}
	if m.seen(b) {
		m.err = errDuplicate
		return false
	}
	i = skipSpace(b, nameEnd)
	if i >= len(b) || b[i] != ':' {
		m.err = errJSON
		return false
	}
	i = skipSpace(b, i+1)
	valueEnd, err := scanValue(b, i, 1)
	if err != nil {
		m.err = err
		return false
	}
	m.valueLo, m.valueHi = i, valueEnd
	i = skipSpace(b, valueEnd)
	switch {
	case i >= len(b):
		m.err = errJSON
		return false
	case b[i] == '}':
		m.finish(b, i+1)
	case b[i] == ',':
		m.i = skipSpace(b, i+1)
	default:
		m.err = errJSON
		return false
	}
	return true
}

// seen reports whether the current name was a name before, and remembers
// it.
func (m *members) seen(b []byte) bool {
	key := m.name(b)
	n := min(m.count-1, maxTrackedNames)
	for _, sp := range m.names[:n] {
		if sp[0] >= 0 && bytes.Equal(b[sp[0]:sp[1]], key) {
			return true
		}
	}
	for _, k := range m.more {
		if bytes.Equal(k, key) {
			return true
		}
	}
	if n < maxTrackedNames && m.escapedName == nil {
		m.names[n] = [2]int32{int32(m.nameLo), int32(m.nameHi)}
		return false
	}
	if n < maxTrackedNames {
		m.names[n] = [2]int32{-1, -1}
	}
	m.more = append(m.more, bytes.Clone(key)) // a copy: the document stays off the heap
	return false
}

// checkUnique returns errDuplicate if an object anywhere in raw, one JSON
// value already scanned, names a member twice, compared as members does.
// Its recursion is bounded by the nesting the scan allowed.
func checkUnique(raw []byte) error {
	if len(raw) == 0 {
		return errJSON
	}
	switch raw[0] {
	case '{':
		var m members
		for m.start(raw, len(raw)); m.next(raw); {
			if err := checkUnique(m.value(raw)); err != nil {
				return err
			}
		}
		return m.err
	case '[':
		for i := skipSpace(raw, 1); i < len(raw) && raw[i] != ']'; {
			end, err := scanValue(raw, i, 1)
			if err != nil {
				return err
			}
			if err := checkUnique(raw[i:end]); err != nil {
				return err
			}
			if i = skipSpace(raw, end); i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
			}
		}
	}
	return nil
}

// unescape decodes a JSON string with escapes, quotes included.
func unescape(quoted []byte) ([]byte, error) {
	var s string
	if err := json.Unmarshal(bytes.Clone(quoted), &s); err != nil {
		return nil, errJSON
	}
	return []byte(s), nil
}

// stringEquals reports whether raw is the JSON string of s, without
// allocating when raw has no escapes.
func stringEquals(raw []byte, s string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1:len(raw)-1]) == s
	}
	u, err := unescape(raw)
	return err == nil && string(u) == s
}
