package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/exchange"
	"github.com/portcullis/portcullis/gateway/token"
)

// maxExternalToken bounds the external tokens the exchange reads, as the
// verifier bounds tokens.
const maxExternalToken = 16 << 10

// newExchangeGate returns the request gate of a route that accepts an
// external issuer's tokens: a bearer token whose iss names that issuer is
// exchanged at the bundled issuer's token endpoint (RFC 8693), once, and
// the internal token takes its place in the request, so that the
// authorizer decides on it and the backend receives it. Other tokens pass
// untouched. The external token is not verified here, only routed by its
// iss: the token endpoint verifies it, and refuses a forgery, which the
// address guard then counts like any failed authentication.
func newExchangeGate(x *config.RouteExchange) (connect.RequestGateFunc, error) {
	ex, err := exchange.New(x.TokenURL, x.ClientID, x.ClientSecret)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ connect.Spec, _ connect.Peer, header http.Header) (context.Context, error) {
		raw, ok := externalToken(header, x.Issuer)
		if !ok {
			return ctx, nil
		}
		internal, err := ex.Exchange(ctx, raw.token, raw.exp)
		if err != nil {
			var xe *exchange.Error
			if errors.As(err, &xe) && xe.Code != "" {
				return ctx, connect.NewError(connect.CodeUnauthenticated, errors.New("external token refused by the token exchange: "+xe.Code))
			}
			return ctx, connect.NewError(connect.CodeUnavailable, errors.New("token exchange unavailable: retry shortly"))
		}
		header.Set("Authorization", "Bearer "+internal)
		return ctx, nil
	}, nil
}

type external struct {
	token string
	exp   time.Time
}

// externalToken returns the bearer token of header when its unverified
// iss claim is issuer.
func externalToken(header http.Header, issuer string) (external, bool) {
	values := header.Values("Authorization")
	if len(values) != 1 || len(values[0]) < 7 || !strings.EqualFold(values[0][:7], "Bearer ") {
		return external{}, false
	}
	raw := strings.TrimLeft(values[0][7:], " ")
	if len(raw) > maxExternalToken {
		return external{}, false
	}
	iss, exp, ok := token.Peek(raw)
	if !ok || iss != issuer {
		return external{}, false
	}
	return external{token: raw, exp: exp}, true
}
