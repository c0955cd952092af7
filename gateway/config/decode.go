package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxValues bounds the values decoded from one file, so that aliases
// repeating aliases cannot make a small file decode forever.
const maxValues = 100_000

// decoder fills a value from a YAML node tree by reflection on its json
// tags, recording every unknown key, duplicate key and value of the wrong
// type instead of stopping at the first.
type decoder struct {
	*report
	budget int
}

// decode reads data into cfg. It reports whether data was well-formed
// YAML; when it was not, the syntax error is the only mistake recorded.
func decode(data []byte, cfg *Config, r *report) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return true // an empty file
		}
		r.mistakes = append(r.mistakes, syntaxMistake(err))
		return false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		r.at("", &next, "a second YAML document: the configuration is one document")
	case !errors.Is(err, io.EOF):
		r.mistakes = append(r.mistakes, syntaxMistake(err))
		return false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return true
		}
		root = root.Content[0]
	}
	d := &decoder{report: r, budget: maxValues}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	return true
}

var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

func syntaxMistake(err error) Mistake {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Mistake{Line: line, Message: "YAML: " + m[2]}
	}
	return Mistake{Message: "YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var durationType = reflect.TypeFor[Duration]()

// value decodes n into v, whose path is path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.at(path, n, "too many values: aliases expand to more than %d", maxValues)
		}
		return
	}
	if path != "" {
		d.places[path] = place{n.Line, n.Column}
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetZero() // "key:" with no value leaves the default
		return
	}
	d.into(n, v, path)
}

// into decodes a non-null n into v. It reports whether n had the kind v
// needs (a map, a list or a scalar).
func (d *decoder) into(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	if t == durationType {
		return d.duration(n, v, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if !d.into(n, p.Elem(), path) {
			return false
		}
		v.Set(p)
	case reflect.Struct:
		return d.structure(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.refuse(path, n, "want a map, got %s", describe(n))
			return false
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		d.pairs(n, path, func(k, val *yaml.Node, child string) {
			e := reflect.New(t.Elem()).Elem()
			d.value(val, e, child)
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode {
				d.refuse(path, n, "want a list, such as [%s]", n.Value)
			} else {
				d.refuse(path, n, "want a list, got %s", describe(n))
			}
			return false
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.value(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.refuse(path, n, "want a string, got %s", describe(n))
			return false
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.refuse(path, n, "want true or false, got %s", describe(n))
			return false
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return d.integer(n, v, path)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil {
			d.refuse(path, n, "want a number, got %s", describe(n))
			return false
		}
		v.SetFloat(f)
	default:
		panic("config: cannot decode into " + t.String())
	}
	return true
}

// structure decodes mapping n into struct v, key by key. An unknown key
// near a valid one that the mapping does not set is read as that key,
// only to report the mistakes in its value too.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) bool {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.refuse(path, n, "want a map of settings, got %s", describe(n))
		return false
	}
	fields := fieldsOf(t)
	set := map[string]bool{}
	type misspelt struct {
		val         *yaml.Node
		child, near string
	}
	var unknown []misspelt
	d.pairs(n, path, func(k, val *yaml.Node, child string) {
		i, ok := fields.byKey[k.Value]
		if !ok {
			msg, near := suggest(k.Value, t)
			d.refuse(child, k, "%s", msg)
			if near != "" {
				unknown = append(unknown, misspelt{val, child, near})
			}
			return
		}
		set[k.Value] = true
		d.value(val, v.Field(fields.list[i].index), child)
	})
	for _, u := range unknown {
		if set[u.near] {
			continue
		}
		// Mistakes about the key not given follow from its misspelling.
		d.broken[join(path, u.near)] = true
		ft := t.Field(fields.list[fields.byKey[u.near]].index).Type
		if fits(u.val, ft) {
			d.value(u.val, reflect.New(ft).Elem(), u.child)
		}
	}
	return true
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) bool {
	var i int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.refuse(path, n, "want a whole number, got %s", describe(n))
		return false
	}
	if n.Decode(&i) != nil {
		d.refuse(path, n, "%s is out of range", n.Value)
		return false
	}
	if v.CanUint() {
		if i < 0 {
			d.refuse(path, n, "must not be negative, got %d", i)
			return false
		}
		if v.OverflowUint(uint64(i)) {
			d.refuse(path, n, "%d is out of range (at most %d)", i, uint64(1)<<v.Type().Bits()-1)
			return false
		}
		v.SetUint(uint64(i))
		return true
	}
	if v.OverflowInt(i) {
		d.refuse(path, n, "%d is out of range", i)
		return false
	}
	v.SetInt(i)
	return true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			d.refuse(path, n, "want a duration such as \"30s\", got the number %s: add a unit", n.Value)
		} else {
			d.refuse(path, n, "want a duration such as \"30s\", got %s", describe(n))
		}
		return false
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.refuse(path, n, "%v", err)
		return false
	}
	v.SetInt(int64(dur))
	return true
}

// pairs calls each for every key of mapping n and its value, with the
// key's path. It refuses keys that are not names and reports duplicates,
// and it expands YAML merge keys ("<<: *defaults"), whose keys count only
// where the mapping does not set them itself.
func (d *decoder) pairs(n *yaml.Node, path string, each func(k, v *yaml.Node, child string)) {
	seen := map[string]*yaml.Node{}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.at(path, k, "want a key name, got %s", describe(k))
			continue
		}
		child := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.at(child, k, "duplicate key; first set at line %d", first.Line)
			continue
		}
		seen[k.Value] = k
		each(k, v, child)
	}
	for _, m := range merged {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Kind != yaml.ScalarNode || seen[k.Value] != nil {
				continue
			}
			seen[k.Value] = k
			each(k, v, join(path, k.Value))
		}
	}
}

// mergeSources returns the mappings a merge key brings in, in order of
// precedence.
func (d *decoder) mergeSources(v *yaml.Node, path string) []*yaml.Node {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, e := range v.Content {
			out = append(out, d.mergeSources(e, path)...)
		}
		return out
	}
	d.at(join(path, "<<"), v, "want a map or a list of maps to merge, got %s", describe(v))
	return nil
}

// fits reports whether node n has the kind type t needs: a map, a list or
// a scalar.
func fits(n *yaml.Node, t reflect.Type) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return n.Kind == yaml.ScalarNode
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return n.Kind == yaml.MappingNode
	case t.Kind() == reflect.Slice:
		return n.Kind == yaml.SequenceNode
	}
	return n.Kind == yaml.ScalarNode
}

// describe names what a node holds, for "want X, got Y".
func describe(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "nothing"
}

// fields are the keys of a struct type, from its json tags, in order.
type fields struct {
	list  []field
	byKey map[string]int
}

type field struct {
	key   string
	index int
}

var fieldCache sync.Map // reflect.Type → *fields

func fieldsOf(t reflect.Type) *fields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*fields)
	}
	f := &fields{byKey: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if key == "-" {
			continue
		}
		if key == "" {
			key = sf.Name
		}
		f.byKey[key] = len(f.list)
		f.list = append(f.list, field{key: key, index: i})
	}
	actual, _ := fieldCache.LoadOrStore(t, f)
	return actual.(*fields)
}
