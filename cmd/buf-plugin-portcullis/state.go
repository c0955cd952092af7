package main

import (
	"context"
	"errors"
	"sync"

	"buf.build/go/bufplugin/check"
	"buf.build/go/bufplugin/descriptor"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
)

type stateKey struct{}

// state is what the rules of one request share, so that buf's call of
// every rule builds each catalog once.
type state struct {
	request check.Request

	lintOnce sync.Once
	problems []catalog.Problem
	files    files
	lintErr  error

	diffOnce sync.Once
	changes  []catalog.Change
	after    files
	diffErr  error
}

// before gives the request's rules a state to share.
func before(ctx context.Context, request check.Request) (context.Context, check.Request, error) {
	return context.WithValue(ctx, stateKey{}, &state{request: request}), request, nil
}

// handler returns a rule handler that reports with the request's state.
func handler(report func(*state, check.ResponseWriter) error) check.RuleHandler {
	return check.RuleHandlerFunc(func(ctx context.Context, w check.ResponseWriter, _ check.Request) error {
		st, ok := ctx.Value(stateKey{}).(*state)
		if !ok {
			return errors.New("buf-plugin-portcullis: no request state")
		}
		return report(st, w)
	})
}

// files are the files of one side of a request, linked, with the names of
// those that are imports rather than files of the module checked.
type files struct {
	registry *protoregistry.Files
	imports  map[string]bool
}

func newFiles(fds []descriptor.FileDescriptor) (files, error) {
	f := files{registry: new(protoregistry.Files), imports: make(map[string]bool)}
	for _, fd := range fds {
		if err := f.registry.RegisterFile(fd.ProtoreflectFileDescriptor()); err != nil {
			return files{}, err
		}
		if fd.IsImport() {
			f.imports[fd.ProtoreflectFileDescriptor().Path()] = true
		}
	}
	return f, nil
}

// lint returns the problems of the request's files: those of catalog.New,
// which `portcullis check` reports.
func (st *state) lint() ([]catalog.Problem, files, error) {
	st.lintOnce.Do(func() {
		st.files, st.lintErr = newFiles(st.request.FileDescriptors())
		if st.lintErr != nil {
			return
		}
		_, err := catalog.New(st.files.registry)
		var invalid *catalog.ValidationError
		if errors.As(err, &invalid) {
			st.problems = invalid.Problems
		} else {
			st.lintErr = err
		}
	})
	return st.problems, st.files, st.lintErr
}

// diff returns the changes in access from the against files to the
// request's files.
//
// Both catalogs are built as a gateway routing none of their services
// would build them: a problem leaves out the services it touches rather
// than failing, as buf lint reports it. A service with a problem is then
// compared once it has none, which is also when a gateway can serve it.
func (st *state) diff() ([]catalog.Change, files, error) {
	st.diffOnce.Do(func() {
		var before, after *catalog.Catalog
		before, _, st.diffErr = lenient(st.request.AgainstFileDescriptors())
		if st.diffErr != nil {
			return
		}
		after, st.after, st.diffErr = lenient(st.request.FileDescriptors())
		if st.diffErr != nil {
			return
		}
		st.changes = catalog.Diff(before, after)
	})
	return st.changes, st.after, st.diffErr
}

func lenient(fds []descriptor.FileDescriptor) (*catalog.Catalog, files, error) {
	f, err := newFiles(fds)
	if err != nil {
		return nil, files{}, err
	}
	// WithServices naming none: every problem is a warning.
	cat, err := catalog.New(f.registry, catalog.WithServices())
	return cat, f, err
}
