package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error lists every mistake in a configuration file.
type Error struct {
	// File names the configuration, as given to [Load] or [Parse].
	File string
	// Mistakes are in the order of their place in the file; those with no
	// place (a required key missing from the top level) come last.
	Mistakes []Mistake
}

// Mistake is one thing wrong in a configuration file.
type Mistake struct {
	// Path is where in the configuration, such as "routes[2].backend" or
	// "rate_limit.tiers.pro.multiplier"; empty for the file as a whole (a
	// syntax error).
	Path string
	// Line and Column locate the mistake in the file, from 1: the key for
	// an unknown or duplicate key, the value otherwise, and the enclosing
	// section for a missing key. Zero when there is no such place.
	Line, Column int
	// Message says what is wrong, such as `unknown key; did you mean
	// "backend"?` or `want a duration such as "30s", got "1 minute"`.
	Message string
}

// String formats the mistake as "line:column: path: message", leaving out
// what is unknown.
func (m Mistake) String() string {
	var b strings.Builder
	if m.Line > 0 {
		fmt.Fprintf(&b, "%d:", m.Line)
		if m.Column > 0 {
			fmt.Fprintf(&b, "%d:", m.Column)
		}
		b.WriteByte(' ')
	}
	if m.Path != "" {
		b.WriteString(m.Path)
		b.WriteString(": ")
	}
	b.WriteString(m.Message)
	return b.String()
}

// Error lists the mistakes one per line, each as
// "file:line:column: path: message", after a line counting them when there
// is more than one.
func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Mistakes) != 1 {
		fmt.Fprintf(&b, "%s: %d mistakes\n", e.File, len(e.Mistakes))
	}
	for i, m := range e.Mistakes {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		b.WriteByte(':')
		if m.Line == 0 {
			b.WriteByte(' ')
		}
		b.WriteString(m.String())
	}
	return b.String()
}

// sortMistakes orders mistakes by place, placeless ones last, keeping the
// order of mistakes at one place.
func sortMistakes(ms []Mistake) {
	slices.SortStableFunc(ms, func(a, b Mistake) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}
