package authz

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
)

// Gate returns a request gate for [connect.WithRequestGate]: it decides
// each call on its headers alone, before any message is read, and puts the
// caller's principal in the context. An [Authorizer.Interceptor] behind it
// does not decide again.
func (a *Authorizer) Gate() connect.RequestGateFunc {
	return func(ctx context.Context, spec connect.Spec, _ connect.Peer, header http.Header) (context.Context, error) {
		if spec.IsClient {
			return ctx, nil
		}
		return a.authorize(ctx, spec, header)
	}
}

// Interceptor returns an interceptor that decides every call a handler
// receives, unary and streaming, unless the gate already did. It lets
// client calls through untouched, so a backend may use it on its handlers
// and on the clients it builds alike.
func (a *Authorizer) Interceptor() connect.Interceptor { return &interceptor{a: a} }

type interceptor struct{ a *Authorizer }

var _ connect.Interceptor = (*interceptor)(nil)

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || i.a.decidedIn(ctx) {
			return next(ctx, req)
		}
		ctx, err := i.a.authorize(ctx, req.Spec(), req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if i.a.decidedIn(ctx) {
			return next(ctx, conn)
		}
		ctx, err := i.a.authorize(ctx, conn.Spec(), conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// authorize decides a call described by spec.
func (a *Authorizer) authorize(ctx context.Context, spec connect.Spec, header http.Header) (context.Context, error) {
	m, err := a.method(spec.Procedure, spec.Schema, header)
	if err != nil {
		return nil, err
	}
	p, err := a.check(ctx, m, header)
	if err != nil {
		return nil, err
	}
	return a.decided(ctx, p), nil
}
