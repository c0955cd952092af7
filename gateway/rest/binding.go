package rest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Binding is one REST route of a method, from its google.api.http option:
// the rule itself or one of its additional_bindings.
type Binding struct {
	// Method is the HTTP method: GET, PUT, POST, DELETE, PATCH, or a custom
	// rule's kind.
	Method string
	// Template is the path template, such as "/v1/{name=orders/*}".
	Template string
	// Procedure is the RPC the route resolves to, "/pkg.Service/Method".
	Procedure string
	// Body is the request field the body holds: "*" for the whole request,
	// a field name, or "" for none (every field from the path and query).
	Body string
	// ResponseBody is the response field the body holds, or "" for the
	// whole response.
	ResponseBody string

	input protoreflect.MessageDescriptor // the request message
}

// httpRules resolves only the google.api.http extension, so that the
// option is read into the generated type however a descriptor loaded at
// run time holds it: decoded, dynamic, or as unknown fields.
var httpRules = func() *protoregistry.Types {
	types := new(protoregistry.Types)
	if err := types.RegisterExtension(annotations.E_Http); err != nil {
		panic(err) // a single extension cannot conflict
	}
	return types
}()

// httpRule returns the google.api.http option of a method, or nil.
func httpRule(md protoreflect.MethodDescriptor) (*annotations.HttpRule, error) {
	opts := md.Options()
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return nil, nil
	}
	encoded, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: encode options: %w", md.FullName(), err)
	}
	decoded := new(descriptorpb.MethodOptions)
	if err := (proto.UnmarshalOptions{Resolver: httpRules}).Unmarshal(encoded, decoded); err != nil {
		return nil, fmt.Errorf("%s: decode options: %w", md.FullName(), err)
	}
	if !proto.HasExtension(decoded, annotations.E_Http) {
		return nil, nil
	}
	rule, ok := proto.GetExtension(decoded, annotations.E_Http).(*annotations.HttpRule)
	if !ok {
		return nil, fmt.Errorf("%s: google.api.http is not an HttpRule", md.FullName())
	}
	return rule, nil
}

// bindings lists the routes of a rule and its additional bindings.
func bindings(md protoreflect.MethodDescriptor, rule *annotations.HttpRule) ([]Binding, error) {
	procedure := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	rules := append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...)
	out := make([]Binding, 0, len(rules))
	for _, r := range rules {
		b := Binding{Procedure: procedure, Body: r.GetBody(), ResponseBody: r.GetResponseBody(), input: md.Input()}
		switch p := r.GetPattern().(type) {
		case *annotations.HttpRule_Get:
			b.Method, b.Template = http.MethodGet, p.Get
		case *annotations.HttpRule_Put:
			b.Method, b.Template = http.MethodPut, p.Put
		case *annotations.HttpRule_Post:
			b.Method, b.Template = http.MethodPost, p.Post
		case *annotations.HttpRule_Delete:
			b.Method, b.Template = http.MethodDelete, p.Delete
		case *annotations.HttpRule_Patch:
			b.Method, b.Template = http.MethodPatch, p.Patch
		case *annotations.HttpRule_Custom:
			b.Method, b.Template = p.Custom.GetKind(), p.Custom.GetPath()
		default:
			return nil, fmt.Errorf("%s: google.api.http has no pattern", md.FullName())
		}
		out = append(out, b)
	}
	return out, nil
}

// segments parses a path template (google/api/http.proto):
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	Verb     = ":" LITERAL ;
//
// into the segments a path must match ("*", "**" or an unescaped literal),
// with each variable replaced by its own segments ("*" when it has none),
// and the verb. Checking the field paths is left to the transcoder.
func segments(template string) (segs []string, verb string, err error) {
	rest, ok := strings.CutPrefix(template, "/")
	if !ok {
		return nil, "", errors.New("a path template starts with /")
	}
	parts, err := splitTopLevel(rest)
	if err != nil {
		return nil, "", err
	}
	last := parts[len(parts)-1]
	if i := topLevelColon(last); i >= 0 {
		parts[len(parts)-1], verb = last[:i], last[i+1:]
		if verb == "" {
			return nil, "", errors.New("empty verb")
		}
	}
	for _, part := range parts {
		if inner, ok := strings.CutPrefix(part, "{"); ok {
			inner, ok = strings.CutSuffix(inner, "}")
			if !ok {
				return nil, "", fmt.Errorf("variable %q is not closed", part)
			}
			_, pattern, hasPattern := strings.Cut(inner, "=")
			if !hasPattern {
				pattern = "*"
			}
			for p := range strings.SplitSeq(pattern, "/") {
				s, err := literal(p)
				if err != nil {
					return nil, "", err
				}
				segs = append(segs, s)
			}
			continue
		}
		s, err := literal(part)
		if err != nil {
			return nil, "", err
		}
		segs = append(segs, s)
	}
	return segs, verb, nil
}

func literal(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty segment")
	}
	if s == "*" || s == "**" {
		return s, nil
	}
	return url.PathUnescape(s)
}

// splitTopLevel splits s at the slashes outside braces.
func splitTopLevel(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	for i := range len(s) {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced }")
			}
		case '/':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced {")
	}
	return append(parts, s[start:]), nil
}

// topLevelColon returns the index of the first ':' outside braces, or -1.
func topLevelColon(s string) int {
	depth := 0
	for i := range len(s) {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ':':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}
