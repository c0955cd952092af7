package dpop

import (
	"encoding/json"
	"errors"
	"strconv"
)

// The proof's header and claims are small flat JSON objects: this scanner
// walks one without building a value, reporting each member's raw name
// and raw value. Strings with escapes are unquoted on demand; nesting is
// bounded.

var errJSON = errors.New("not a well-formed JSON object")

const maxDepth = 8

// object walks the members of the JSON object raw.
type object struct {
	raw  []byte
	pos  int
	err  error
	name []byte // the current member's name, unescaped only if needed
	val  []byte // the current member's raw value
	done bool
}

func newObject(raw []byte) object {
	o := object{raw: raw}
	o.skipSpace()
	if o.pos >= len(raw) || raw[o.pos] != '{' {
		o.err = errJSON
		return o
	}
	o.pos++
	o.skipSpace()
	if o.pos < len(raw) && raw[o.pos] == '}' {
		o.pos++
		o.done = true
		o.end()
	}
	return o
}

// next advances to the next member; it reports false at the end or on an
// error, which err then holds.
func (o *object) next() bool {
	if o.err != nil || o.done {
		return false
	}
	o.skipSpace()
	start := o.pos
	if !o.skipString() {
		o.err = errJSON
		return false
	}
	name, ok := unquote(o.raw[start:o.pos])
	if !ok {
		o.err = errJSON
		return false
	}
	o.name = name
	o.skipSpace()
	if o.pos >= len(o.raw) || o.raw[o.pos] != ':' {
		o.err = errJSON
		return false
	}
	o.pos++
	o.skipSpace()
	start = o.pos
	if !o.skipValue(0) {
		o.err = errJSON
		return false
	}
	o.val = o.raw[start:o.pos]
	o.skipSpace()
	if o.pos >= len(o.raw) {
		o.err = errJSON
		return false
	}
	switch o.raw[o.pos] {
	case ',':
		o.pos++
	case '}':
		o.pos++
		o.done = true
		o.end()
		if o.err != nil {
			return false
		}
	default:
		o.err = errJSON
		return false
	}
	return true
}

// end checks that nothing but white space follows the object.
func (o *object) end() {
	o.skipSpace()
	if o.pos != len(o.raw) {
		o.err = errJSON
	}
}

func (o *object) skipSpace() {
	for o.pos < len(o.raw) {
		switch o.raw[o.pos] {
		case ' ', '\t', '\n', '\r':
			o.pos++
		default:
			return
		}
	}
}

// skipString moves past a JSON string starting at pos.
func (o *object) skipString() bool {
	if o.pos >= len(o.raw) || o.raw[o.pos] != '"' {
		return false
	}
	for i := o.pos + 1; i < len(o.raw); i++ {
		switch c := o.raw[i]; {
		case c == '\\':
			i++
		case c == '"':
			o.pos = i + 1
			return true
		case c < 0x20:
			return false
		}
	}
	return false
}

func (o *object) skipValue(depth int) bool {
	if o.pos >= len(o.raw) || depth > maxDepth {
		return false
	}
	switch c := o.raw[o.pos]; {
	case c == '"':
		return o.skipString()
	case c == '{', c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		o.pos++
		o.skipSpace()
		if o.pos < len(o.raw) && o.raw[o.pos] == closer {
			o.pos++
			return true
		}
		for {
			o.skipSpace()
			if c == '{' {
				if !o.skipString() {
					return false
				}
				o.skipSpace()
				if o.pos >= len(o.raw) || o.raw[o.pos] != ':' {
					return false
				}
				o.pos++
				o.skipSpace()
			}
			if !o.skipValue(depth + 1) {
				return false
			}
			o.skipSpace()
			if o.pos >= len(o.raw) {
				return false
			}
			switch o.raw[o.pos] {
			case ',':
				o.pos++
			case closer:
				o.pos++
				return true
			default:
				return false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		start := o.pos
		for o.pos < len(o.raw) {
			c := o.raw[o.pos]
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				break
			}
			o.pos++
		}
		_, err := strconv.ParseFloat(string(o.raw[start:o.pos]), 64)
		return err == nil
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(o.raw)-o.pos >= len(lit) && string(o.raw[o.pos:o.pos+len(lit)]) == lit {
				o.pos += len(lit)
				return true
			}
		}
		return false
	}
}

// unquote returns the contents of the JSON string raw (quotes included).
// Without escapes it is a subslice of raw; with them, a new slice.
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	escaped := false
	for _, c := range s {
		if c == '\\' {
			escaped = true
			break
		}
	}
	if !escaped {
		return s, true
	}
	var u string
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, false
	}
	return []byte(u), true
}

// stringValue returns the member value raw as a string's contents, or
// false when it is not a string.
func stringValue(raw []byte) ([]byte, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return nil, false
	}
	return unquote(raw)
}
