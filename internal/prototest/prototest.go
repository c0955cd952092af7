// Package prototest compiles .proto sources in tests against the real
// gateway/v1 vocabulary, so tests can declare services inline and load them
// the way the gateway does: linked, or from an image file.
package prototest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// ProtoDir is the repository's proto/ directory.
var ProtoDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "proto")
}()

// Compile compiles the named sources (file name → source text), which may
// import anything under proto/ and the standard imports, and returns the
// linked files with all their imports, each after the files that import it.
// The files keep their source info, as `buf build` keeps it by default.
func Compile(t testing.TB, sources map[string]string) []protoreflect.FileDescriptor {
	t.Helper()
	compiler := protocompile.Compiler{
		SourceInfoMode: protocompile.SourceInfoStandard,
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: func(path string) (io.ReadCloser, error) {
				if src, ok := sources[path]; ok {
					return io.NopCloser(strings.NewReader(src)), nil
				}
				return os.Open(filepath.Join(ProtoDir, filepath.FromSlash(path)))
			},
		}),
	}
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	slices.Sort(names)
	linked, err := compiler.Compile(context.Background(), names...)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	var out []protoreflect.FileDescriptor
	seen := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		out = append(out, fd)
		for i := range fd.Imports().Len() {
			visit(fd.Imports().Get(i).FileDescriptor)
		}
	}
	for _, fd := range linked {
		visit(fd)
	}
	return out
}

// Files registers the compiled files, with options as the compiler decoded
// them rather than as this binary would.
func Files(t testing.TB, sources map[string]string) *protoregistry.Files {
	t.Helper()
	files := new(protoregistry.Files)
	fds := Compile(t, sources)
	for i := len(fds) - 1; i >= 0; i-- {
		if err := files.RegisterFile(fds[i]); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// Set returns the compiled files as a descriptor set, leaving out the files
// named in exclude.
func Set(t testing.TB, sources map[string]string, exclude ...string) *descriptorpb.FileDescriptorSet {
	t.Helper()
	set := new(descriptorpb.FileDescriptorSet)
	for _, fd := range Compile(t, sources) {
		if !slices.Contains(exclude, fd.Path()) {
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
	}
	return set
}

// WriteImage writes the compiled files as a binary image (the wire format
// of `buf build -o image.binpb`) in a temporary directory and returns its
// path.
func WriteImage(t testing.TB, sources map[string]string, exclude ...string) string {
	t.Helper()
	return WriteSet(t, Set(t, sources, exclude...))
}

// WriteSet writes a descriptor set as a binary image in a temporary
// directory and returns its path.
func WriteSet(t testing.TB, set *descriptorpb.FileDescriptorSet) string {
	t.Helper()
	data, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.binpb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
