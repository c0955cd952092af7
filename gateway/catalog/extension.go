package catalog

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
)

// extensions resolves only the vocabulary's extensions, so that options are
// decoded into the generated types whatever resolver first decoded them.
var extensions = func() *protoregistry.Types {
	types := new(protoregistry.Types)
	for _, xt := range []protoreflect.ExtensionType{
		gatewayv1.E_Domain, gatewayv1.E_Permission, gatewayv1.E_DefaultAccess, gatewayv1.E_Access,
	} {
		if err := types.RegisterExtension(xt); err != nil {
			panic(err) // the generated extensions are distinct by construction
		}
	}
	return types
}()

// extension returns the value of extension xt in a descriptor's options, or
// nil. Descriptors loaded at run time may hold the options as unknown
// fields or as dynamic messages; re-parsing the encoded options with a
// resolver of our own turns every form into the generated type, never
// panicking on a mismatch.
func extension[T proto.Message](desc protoreflect.Descriptor, xt protoreflect.ExtensionType) (T, error) {
	var zero T
	opts := desc.Options()
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return zero, nil
	}
	encoded, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
	if err != nil {
		return zero, fmt.Errorf("encode options: %w", err)
	}
	field := xt.TypeDescriptor()
	// Decode into the generated options type (descriptorpb), whatever type
	// the descriptor's own options have.
	optionsType, err := protoregistry.GlobalTypes.FindMessageByName(field.ContainingMessage().FullName())
	if err != nil {
		return zero, fmt.Errorf("options type: %w", err)
	}
	msg := optionsType.New()
	if err := (proto.UnmarshalOptions{Resolver: extensions}).Unmarshal(encoded, msg.Interface()); err != nil {
		return zero, fmt.Errorf("decode options: %w", err)
	}
	if !msg.Has(field) {
		return zero, nil
	}
	value, ok := msg.Get(field).Message().Interface().(T)
	if !ok {
		return zero, fmt.Errorf("option %s decoded as %T", field.FullName(), msg.Get(field).Message().Interface())
	}
	return value, nil
}
