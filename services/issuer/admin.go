package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/gen/portcullis/admin/v1/adminv1connect"
)

// AdminServicePath is the path of the client administration service,
// after the path of the issuer URL.
const AdminServicePath = "/" + adminv1connect.ClientAdminServiceName + "/"

// maxAdminRequest bounds the size of a request to the administration
// service: the largest, a client with every permission of a large
// catalog, is a few KiB.
const maxAdminRequest = 64 << 10

type adminConfig struct {
	opts []connect.HandlerOption
}

// WithAdmin serves the client administration service,
// portcullis.admin.v1.ClientAdminService, on the issuer's handler under
// [AdminServicePath]: listing, creating, re-granting, rotating and
// revoking the clients of the registry over Connect, gRPC and gRPC-Web, so
// that a page or a program provisions clients without a shell on the
// issuer's machine. Changes apply at once.
//
// Callers authenticate with the issuer's own tokens, verified with the
// keys it publishes, and are authorized by the gateway's authorizer
// against the permissions of the PORTCULLIS domain that the service
// declares: READ_CLIENTS to list, MANAGE_CLIENTS to change. A caller acts
// only within its reach: it grants only permissions its token holds, and
// changes, rotates or revokes only clients whose every grant its token
// holds. The catalog given to [New] must hold the service; one built from
// protoregistry.GlobalFiles does.
//
// Requests are limited to 64 KiB. opts are added to the handler's
// options before the authorization, so that their interceptors, such as
// telemetry, see every call; they may raise the limit. Applies to New.
func WithAdmin(opts ...connect.HandlerOption) Option {
	return optionFunc(func(c *config) { c.admin = &adminConfig{opts: opts} })
}

// mountAdmin adds the client administration service to mux, which serves
// the issuer's key set.
func (s *Server) mountAdmin(mux *http.ServeMux, prefix string, cfg *adminConfig) error {
	for _, procedure := range []string{
		adminv1connect.ClientAdminServiceListClientsProcedure,
		adminv1connect.ClientAdminServiceListPermissionsProcedure,
		adminv1connect.ClientAdminServiceCreateClientProcedure,
		adminv1connect.ClientAdminServiceUpdateGrantsProcedure,
		adminv1connect.ClientAdminServiceRotateSecretProcedure,
		adminv1connect.ClientAdminServiceRevokeClientProcedure,
	} {
		if _, ok := s.cat.Method(procedure); !ok {
			return fmt.Errorf("admin: the catalog lacks %s: build it from descriptors that hold portcullis/admin/v1/admin.proto", strings.TrimPrefix(procedure, "/"))
		}
	}
	// The service verifies the issuer's own tokens with the key set the
	// issuer publishes, fetched in process: no network round trip, and no
	// dependence on where the issuer URL points from this machine.
	v, err := token.NewVerifier(context.Background(), []token.Issuer{{
		Issuer:    s.issuer,
		Audiences: []string{s.audience},
		JWKSURL:   s.JWKSURL(),
		Type:      token.TypeAccessToken,
	}}, token.WithHTTPClient(&http.Client{Transport: handlerTransport{mux}}), token.WithClock(token.ClockFunc(s.cfg.now)))
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	az, err := authz.New(s.cat, v)
	if err != nil {
		v.Close()
		return fmt.Errorf("admin: %w", err)
	}
	opts := append(append([]connect.HandlerOption{connect.WithReadMaxBytes(maxAdminRequest)}, cfg.opts...),
		connect.WithRequestGate(az.Gate()),
		connect.WithInterceptors(az.Interceptor()),
	)
	path, h := adminv1connect.NewClientAdminServiceHandler(&adminService{s: s}, opts...)
	if prefix != "" {
		h = http.StripPrefix(prefix, h)
	}
	mux.Handle(prefix+path, h)
	s.adminVerifier = v
	return nil
}

// handlerTransport answers HTTP requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	res := w.Result()
	res.Request = r
	return res, nil
}

// errNoCaller refuses a call that reached the service without a verified
// caller, which the authorization in front of it never lets through.
var errNoCaller = connect.NewError(connect.CodeUnauthenticated, errors.New("no verified caller"))

// caller returns the verified caller of a call.
func caller(ctx context.Context) (*token.Principal, error) {
	p, ok := token.FromContext(ctx)
	if !ok || p == nil {
		return nil, errNoCaller
	}
	return p, nil
}
