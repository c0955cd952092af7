package rest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkQuery refuses query parameters that name no field of the request,
// as the transcoder would, but with InvalidArgument (400): the transcoder
// reports them as Internal (500), a failure of the gateway rather than
// of the caller.
func checkQuery(input protoreflect.MessageDescriptor, rawQuery string) error {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("invalid query string: %w", err)
	}
	for name := range values {
		if err := checkFieldPath(input, name); err != nil {
			return err
		}
	}
	return nil
}

// checkFieldPath resolves a query parameter's field path ("a.b.c", each
// element a field's JSON or proto name) the way the transcoder does.
func checkFieldPath(msg protoreflect.MessageDescriptor, path string) error {
	for rest := path; ; {
		part, next, more := strings.Cut(rest, ".")
		fields := msg.Fields()
		field := fields.ByJSONName(part)
		if field == nil {
			field = fields.ByName(protoreflect.Name(part))
		}
		if field == nil {
			return fmt.Errorf("query parameter %q: %s has no field %q", path, msg.FullName(), part)
		}
		if !more {
			return nil
		}
		if field.Cardinality() == protoreflect.Repeated || field.Message() == nil {
			return fmt.Errorf("query parameter %q: field %q of %s is not a message", path, part, msg.FullName())
		}
		msg, rest = field.Message(), next
	}
}

// writeInvalidArgument answers a REST call with the google.rpc.Status of
// an InvalidArgument error, as the transcoder writes its errors.
func writeInvalidArgument(w http.ResponseWriter, err error) {
	body, merr := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(&status.Status{
		Code:    int32(code.Code_INVALID_ARGUMENT),
		Message: err.Error(),
	})
	if merr != nil {
		body = []byte(`{"code":3,"message":"invalid request","details":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}
