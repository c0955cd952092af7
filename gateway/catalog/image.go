package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// LoadImage reads a buf image (`buf build -o image.binpb`, or `-o
// image.json`) or a protoc descriptor set (`protoc -o set.binpb
// --include_imports`) and returns its files. Imports the image leaves out
// (`buf build --exclude-imports`) are taken from the descriptors compiled
// into this binary, such as the well-known types and gateway/v1.
func LoadImage(path string) (*protoregistry.Files, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: read image: %w", err)
	}
	set := new(descriptorpb.FileDescriptorSet)
	if strings.EqualFold(filepath.Ext(path), ".json") {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, set)
	} else {
		err = proto.Unmarshal(data, set)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: decode image %s: %w", path, err)
	}
	files, err := NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("catalog: image %s: %w", path, err)
	}
	return files, nil
}

// NewFiles links the files of a descriptor set. Imports missing from the set
// are taken from protoregistry.GlobalFiles.
func NewFiles(set *descriptorpb.FileDescriptorSet) (*protoregistry.Files, error) {
	l := &linker{
		pending: make(map[string]*descriptorpb.FileDescriptorProto, len(set.GetFile())),
		linking: make(map[string]bool),
		files:   new(protoregistry.Files),
	}
	for _, fd := range set.GetFile() {
		if _, dup := l.pending[fd.GetName()]; dup {
			return nil, fmt.Errorf("file %q appears twice", fd.GetName())
		}
		l.pending[fd.GetName()] = fd
	}
	for _, fd := range set.GetFile() {
		if err := l.link(fd.GetName()); err != nil {
			return nil, err
		}
	}
	return l.files, nil
}

// linker registers files in dependency order.
type linker struct {
	pending map[string]*descriptorpb.FileDescriptorProto
	linking map[string]bool
	files   *protoregistry.Files
}

func (l *linker) link(path string) error {
	if _, err := l.files.FindFileByPath(path); err == nil {
		return nil
	}
	fdp, ok := l.pending[path]
	if !ok {
		if _, err := protoregistry.GlobalFiles.FindFileByPath(path); err == nil {
			return nil // resolved from the compiled-in files
		}
		return fmt.Errorf("import %q is neither in the image nor compiled in", path)
	}
	if l.linking[path] {
		return fmt.Errorf("import cycle through %q", path)
	}
	l.linking[path] = true
	for _, dep := range fdp.GetDependency() {
		if err := l.link(dep); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	fd, err := protodesc.NewFile(fdp, resolver{l.files})
	if err != nil {
		return err
	}
	return l.files.RegisterFile(fd)
}

// resolver finds descriptors among the files linked so far, then among the
// compiled-in ones.
type resolver struct{ local *protoregistry.Files }

func (r resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	fd, err := r.local.FindFileByPath(path)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalFiles.FindFileByPath(path)
	}
	return fd, err
}

func (r resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	d, err := r.local.FindDescriptorByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return protoregistry.GlobalFiles.FindDescriptorByName(name)
	}
	return d, err
}
