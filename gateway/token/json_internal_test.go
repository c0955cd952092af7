package token

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// decodeObject reads an object with encoding/json, which keeps the last of
// duplicate names.
func decodeObject(doc []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(doc))
	if d.Decode(&m) != nil || m == nil || d.More() {
		return nil, false
	}
	return m, json.Valid(doc)
}

// FuzzMembers checks the scanner against encoding/json: both accept the
// same objects, except that the scanner refuses duplicate names, and both
// read the same members.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { "a" : 1 , "b":[true,false,null,{"c":"\u00e9"}] } `, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`,
		`{"a":-0.5e+3}`, `{"a":01}`, `{"a":"\x01"}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `[1]`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`,
		`{"a":{"b":{"c":{"d":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}}`,
		`{"a":{"b":1,"b":2}}`, `{"a":[{"b":{}},{"b":[],"\u0062":0}]}`, `{"a":{"b":{"b":1},"c":[{"b":1},{"b":2}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var m members
		got := map[string]string{}
		duplicate := false
		for m.start(doc, 1<<20); m.next(doc); {
			got[string(m.name(doc))] = string(m.value(doc))
		}
		if m.err == errDuplicate {
			duplicate = true
			if _, before := got[string(m.name(doc))]; !before {
				t.Fatalf("scanner calls %q a duplicate in %q, but did not read it before", m.name(doc), doc)
			}
		}
		if m.err == errSurrogate {
			// encoding/json takes lone surrogates, as U+FFFD; the scanner
			// refuses them (RFC 8259 §8.2).
			if !bytes.Contains(bytes.ToLower(doc), []byte(`\ud`)) {
				t.Fatalf("scanner calls %q a lone surrogate", doc)
			}
			return
		}
		want, valid := decodeObject(doc)
		deep := bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) > maxDepth
		switch {
		case m.err == nil && !valid:
			t.Fatalf("scanner accepts %q, encoding/json does not", doc)
		// encoding/json takes invalid UTF-8; RFC 8259 §8.1 does not.
		case m.err != nil && valid && !duplicate && !deep && utf8.Valid(doc):
			t.Fatalf("scanner refuses %q (%v), encoding/json accepts it", doc, m.err)
		case m.err == nil && len(got) != len(want):
			t.Fatalf("scanner read %d members of %q, encoding/json %d", len(got), doc, len(want))
		}
		if m.err == nil {
			for k, v := range want {
				if !json.Valid([]byte(got[k])) || compact(got[k]) != compact(string(v)) {
					t.Fatalf("member %q: scanner %q, encoding/json %q", k, got[k], v)
				}
			}
			// Within the values, checkUnique finds the duplicates that
			// encoding/json sees.
			for k, v := range got {
				err := checkUnique([]byte(v))
				if dup := hasDuplicates([]byte(v)); (err == errDuplicate) != dup || (err != nil && err != errDuplicate) {
					t.Fatalf("member %q: checkUnique(%q) = %v, encoding/json sees duplicates: %v", k, v, err, dup)
				}
			}
		}
	})
}

// hasDuplicates reports whether an object anywhere in doc, one JSON value,
// names a member twice, as encoding/json reads the names.
func hasDuplicates(doc []byte) bool {
	type frame struct {
		names     map[string]bool // nil for an array
		expectKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].expectKey = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name, _ := tok.(string)
			if stack[n-1].names[name] {
				return true
			}
			stack[n-1].names[name] = true
			stack[n-1].expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return "!" + s
	}
	return b.String()
}
