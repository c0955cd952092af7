package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// report collects the mistakes of one file, and remembers where each path
// is in it so that mistakes found after decoding get a place too.
type report struct {
	places   map[string]place // path → where its value is
	broken   map[string]bool  // paths whose value was refused or whose key was misspelt
	mistakes []Mistake
}

type place struct{ line, column int }

func newReport() *report {
	return &report{places: map[string]place{}, broken: map[string]bool{}}
}

// at records a mistake at node n.
func (r *report) at(path string, n *yaml.Node, format string, args ...any) {
	r.mistakes = append(r.mistakes, Mistake{Path: path, Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)})
}

// refuse records a mistake in the value at path, whose later checks would
// only repeat it.
func (r *report) refuse(path string, n *yaml.Node, format string, args ...any) {
	r.at(path, n, format, args...)
	r.broken[path] = true
}

// add records a mistake found after decoding, placed at path or else at
// the nearest enclosing section in the file, unless it follows from one
// already recorded in the same value or an enclosing one.
func (r *report) add(path, format string, args ...any) {
	for p := path; ; p = parent(p) {
		if r.broken[p] {
			return
		}
		if p == "" {
			break
		}
	}
	m := Mistake{Path: path, Message: fmt.Sprintf(format, args...)}
	for p := path; p != ""; p = parent(p) {
		if at, ok := r.places[p]; ok {
			m.Line, m.Column = at.line, at.column
			break
		}
	}
	r.mistakes = append(r.mistakes, m)
}

// parent strips the last step of a path: "routes[2].backend" → "routes[2]"
// → "routes" → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
