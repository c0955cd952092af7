// Package rpcerror builds the errors the example services return, with
// the standard google.rpc details that clients can act on, and finds who
// is calling.
package rpcerror

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/token"
)

// ErrNoCaller is the cause of the Unauthenticated error of a write whose
// caller is unknown.
var ErrNoCaller = errors.New("no caller identity: call through the gateway or with a verified token")

// InvalidArgument returns an InvalidArgument error with a
// google.rpc.BadRequest detail listing every violation (at least one).
func InvalidArgument(violations ...*errdetails.BadRequest_FieldViolation) error {
	msg := violations[0].GetField() + ": " + violations[0].GetDescription()
	if len(violations) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(violations)-1)
	}
	err := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
	addDetail(err, &errdetails.BadRequest{FieldViolations: violations})
	return err
}

// Violation describes what is wrong with one field of a request.
func Violation(field, description string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: description}
}

// NotFound returns a NotFound error ("licence order "x" not found") with a
// google.rpc.ResourceInfo detail naming the resource's message type.
func NotFound(resourceType, what, name string) error {
	err := connect.NewError(connect.CodeNotFound, fmt.Errorf("%s %q not found", what, name))
	addDetail(err, &errdetails.ResourceInfo{
		ResourceType: resourceType,
		ResourceName: name,
		Description:  "no such " + what,
	})
	return err
}

func addDetail(err *connect.Error, msg proto.Message) {
	if detail, detailErr := connect.NewErrorDetail(msg); detailErr == nil {
		err.AddDetail(detail)
	}
}

// Caller returns who is calling: the client id of the verified
// token.Principal in ctx, else the value of identityHeader (set by the
// gateway; "" trusts no header), else an Unauthenticated error.
func Caller(ctx context.Context, header http.Header, identityHeader string) (string, error) {
	if p, ok := token.FromContext(ctx); ok && p.ClientID != "" {
		return p.ClientID, nil
	}
	if identityHeader != "" {
		if id := header.Get(identityHeader); id != "" {
			return id, nil
		}
	}
	return "", connect.NewError(connect.CodeUnauthenticated, ErrNoCaller)
}
