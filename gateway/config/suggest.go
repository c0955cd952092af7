package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// suggest explains an unknown key in struct type t: the valid key it is
// closest to there ("did you mean"), or the sections where it is valid,
// or else the closest key anywhere. near is the suggested key of t, if
// any.
func suggest(key string, t reflect.Type) (msg, near string) {
	fields := fieldsOf(t)
	keys := make([]string, len(fields.list))
	for i, f := range fields.list {
		keys[i] = f.key
	}
	near = closest(key, keys)
	var elsewhere []string
	for _, p := range allKeys() {
		if p.key == key && p.typ != t {
			elsewhere = append(elsewhere, p.sectionName())
		}
	}
	switch {
	case near != "" && len(elsewhere) > 0:
		return fmt.Sprintf("unknown key; did you mean %q? (%s belongs in %s)", near, key, orList(elsewhere)), near
	case near != "":
		return fmt.Sprintf("unknown key; did you mean %q?", near), near
	case len(elsewhere) > 0:
		return fmt.Sprintf("unknown key here; it belongs in %s", orList(elsewhere)), ""
	}
	var others []string
	var places []keyPlace
	for _, p := range allKeys() {
		if p.typ != t {
			others = append(others, p.key)
			places = append(places, p)
		}
	}
	if far := closest(key, others); far != "" {
		for _, p := range places {
			if p.key == far {
				return fmt.Sprintf("unknown key; did you mean %s?", join(p.section, p.key)), ""
			}
		}
	}
	return fmt.Sprintf("unknown key; want one of %s", strings.Join(keys, ", ")), ""
}

func orList(items []string) string {
	if len(items) > 3 {
		items = append(items[:3:3], "...")
	}
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// keyPlace is a key valid in one section of the configuration.
type keyPlace struct {
	section string       // "limits", "issuers[]", "rate_limit.tiers.<name>.override"
	key     string       // "max_timeout"
	typ     reflect.Type // the struct type of the section
}

func (p keyPlace) sectionName() string {
	if p.section == "" {
		return "the top level"
	}
	return p.section
}

// allKeys lists every key of [Config], section by section.
var allKeys = sync.OnceValue(func() []keyPlace {
	var out []keyPlace
	var walk func(t reflect.Type, section string)
	walk = func(t reflect.Type, section string) {
		switch t.Kind() {
		case reflect.Pointer:
			walk(t.Elem(), section)
		case reflect.Slice:
			walk(t.Elem(), section+"[]")
		case reflect.Map:
			walk(t.Elem(), section+".<name>")
		case reflect.Struct:
			if t == durationType {
				return
			}
			for _, f := range fieldsOf(t).list {
				out = append(out, keyPlace{section: section, key: f.key, typ: t})
				walk(t.Field(f.index).Type, join(section, f.key))
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
})

// closest returns the candidate nearest to key, ignoring case, "_" and
// "-", if it is near enough to be a slip or one is the start of the other;
// ties go to the earlier.
func closest(key string, candidates []string) string {
	k := normalizeKey(key)
	limit := 1
	switch {
	case len(k) > 9:
		limit = 3
	case len(k) > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		nc := normalizeKey(c)
		d := editDistance(k, nc)
		if d > limit && min(len(k), len(nc)) >= 4 && (strings.HasPrefix(nc, k) || strings.HasPrefix(k, nc)) {
			d = limit // "password" for "password_env", "backend_url" for "backend"
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func normalizeKey(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours, each 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// prev2, prev and cur are rows i-2, i-1 and i of the distance table.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
