package rest

import (
	"fmt"
	"strings"
)

// router finds the binding of a REST request. It matches paths the way
// connectrpc.com/vanguard's router does (literal segments before "*",
// "*" before "**", which takes the rest; the verb after the first ':' of
// the last segment; a custom kind "*" for any method), so that it knows,
// before the transcoder runs, which requests the transcoder will route:
// only those go through it, and the CORS policy of a REST path is that of
// the service the transcoder will call.
type router struct {
	children map[string]*router
	verbs    map[string]map[string]*Binding // verb → HTTP method → binding
}

func (r *router) insert(b *Binding) error {
	segs, verb, err := segments(b.Template)
	if err != nil {
		return fmt.Errorf("%s %s: %w", b.Method, b.Template, err)
	}
	node := r
	for _, s := range segs {
		child := node.children[s]
		if child == nil {
			if node.children == nil {
				node.children = make(map[string]*router)
			}
			child = &router{}
			node.children[s] = child
		}
		node = child
	}
	methods := node.verbs[verb]
	if methods == nil {
		if node.verbs == nil {
			node.verbs = make(map[string]map[string]*Binding)
		}
		methods = make(map[string]*Binding)
		node.verbs[verb] = methods
	}
	if other, ok := methods[b.Method]; ok {
		return fmt.Errorf("%s %s of %s is also bound by %s", b.Method, b.Template, b.Procedure, other.Procedure)
	}
	methods[b.Method] = b
	return nil
}

// match returns the binding of method on path, or nil; methods is
// non-nil when bindings of other methods have the path (the transcoder
// then answers 405 Method Not Allowed).
func (r *router) match(method, path string) (b *Binding, methods map[string]*Binding) {
	if len(path) == 0 || path[0] != '/' || path[len(path)-1] == ':' {
		return nil, nil
	}
	rest := path[1:]
	var verb string
	lastStart := strings.LastIndexByte(rest, '/') + 1
	if i := strings.IndexByte(rest[lastStart:], ':'); i >= 0 {
		verb = rest[lastStart+i+1:]
		rest = rest[:lastStart+i]
	}
	return r.find(rest, false, verb, method)
}

// find matches the segments of path, none left when done. The first
// subtree, in the order literal, "*", "**", that binds the path to any
// method decides, as in vanguard: there is no backtracking on the method.
func (r *router) find(path string, done bool, verb, method string) (*Binding, map[string]*Binding) {
	if done {
		methods := r.verbs[verb]
		if b := methods[method]; b != nil {
			return b, methods
		}
		return methods["*"], methods
	}
	segment, rest, more := strings.Cut(path, "/")
	for _, key := range [2]string{segment, "*"} {
		if child := r.children[key]; child != nil {
			if b, methods := child.find(rest, !more, verb, method); b != nil || methods != nil {
				return b, methods
			}
		}
	}
	if child := r.children["**"]; child != nil {
		return child.find("", true, verb, method)
	}
	return nil, nil
}
