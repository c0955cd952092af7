package rest

import (
	"errors"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fallback resolves from the first resolver that knows a type.
type fallback [2]TypeResolver

func (f fallback) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	t, err := f[0].FindMessageByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return f[1].FindMessageByName(name)
	}
	return t, err
}

func (f fallback) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	t, err := f[0].FindMessageByURL(url)
	if errors.Is(err, protoregistry.NotFound) {
		return f[1].FindMessageByURL(url)
	}
	return t, err
}

func (f fallback) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	t, err := f[0].FindExtensionByName(name)
	if errors.Is(err, protoregistry.NotFound) {
		return f[1].FindExtensionByName(name)
	}
	return t, err
}

func (f fallback) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	t, err := f[0].FindExtensionByNumber(message, field)
	if errors.Is(err, protoregistry.NotFound) {
		return f[1].FindExtensionByNumber(message, field)
	}
	return t, err
}
