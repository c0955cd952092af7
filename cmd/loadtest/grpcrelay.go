package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/token"
)

// An experiment, not part of the gateway: the gRPC relay on grpc-go's
// transport. grpc-go's server takes the call (h2c, HTTP/2 with prior
// knowledge), the gateway's own policy code decides it as in relay.go
// (authz.Check with its cache, the in-memory limiter, the identity headers),
// and one grpc-go client connection relays it to the backend. Messages pass
// through both sides undecoded: a codec that hands grpc-go's buffers from
// one stream to the other. Every kind of call (unary, client, server and
// bidi streams) is relayed as a bidi stream: messages both ways
// concurrently, then the backend's status. Refusals are gRPC statuses. It
// speaks only gRPC, and runs as its own process:
//
//	loadtest grpcrelay -listen ADDR -backend URL -jwks FILE

// serveGRPCRelay relays the gRPC calls that ln accepts to backend, the URL
// of an h2c server, until ctx is done.
func serveGRPCRelay(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	g, err := newGRPCRelay(ctx, backend, jwksFile)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer g.conn.Close()
	return serveGRPC(ctx, ln, g.handle)
}

// grpcRelay decides each call as the gateway does, then relays its
// messages on conn.
type grpcRelay struct {
	*policy
	conn *grpc.ClientConn
}

func newGRPCRelay(ctx context.Context, backend, jwksFile string) (*grpcRelay, error) {
	pol, err := newPolicy(ctx, jwksFile)
	if err != nil {
		return nil, err
	}
	host, err := h2cHost(backend)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+host,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A relay replays nothing: no retry buffer holds the messages.
		grpc.WithDisableRetry(),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(passthroughCodec{}),
			grpc.MaxCallRecvMsgSize(math.MaxInt32),
			grpc.MaxCallSendMsgSize(math.MaxInt32),
		),
	)
	if err != nil {
		return nil, err
	}
	return &grpcRelay{policy: pol, conn: conn}, nil
}

// relayStream describes every relayed call: a bidi stream covers them all.
var relayStream = &grpc.StreamDesc{StreamName: "relay", ServerStreams: true, ClientStreams: true}

// The identity headers as metadata keys, which are lower case.
var (
	clientIDKey = strings.ToLower(forward.ClientIDHeader)
	tierKey     = strings.ToLower(forward.TierHeader)
)

// admit decides a call that grpc-go's server took, as relay.go decides an
// HTTP request, and returns its method, its metadata as it came and as
// HTTP headers, and the caller's principal; or the call's refusal status.
func (p *policy) admit(ss grpc.ServerStream) (method string, in metadata.MD, header http.Header, pr *token.Principal, err error) {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return "", nil, nil, nil, status.Error(codes.Internal, "no method")
	}
	ctx := ss.Context()
	in, _ = metadata.FromIncomingContext(ctx)
	header = make(http.Header, len(in)+6)
	for k, v := range in {
		header[http.CanonicalHeaderKey(k)] = v
	}
	pr, err = p.authorizer.Check(ctx, method, header)
	if err != nil {
		return "", nil, nil, nil, refusalStatus(ss, err)
	}
	if pr == nil {
		return "", nil, nil, nil, status.Error(codes.Unauthenticated, "refused")
	}
	if res, err := p.limiter.Allow(ctx, pr.ClientID, p.limit, 1); err != nil || !res.Allowed {
		return "", nil, nil, nil, status.Error(codes.ResourceExhausted, "refused")
	}
	return method, in, header, pr, nil
}

// handle relays one call of any method.
func (g *grpcRelay) handle(_ any, ss grpc.ServerStream) error {
	method, in, _, p, err := g.admit(ss)
	if err != nil {
		return err
	}
	ctx := ss.Context()
	out := make(metadata.MD, len(in)+2)
	for k, v := range in {
		if forwardedKey(k) {
			out[k] = v // shared, not copied: neither side changes it
		}
	}
	out[clientIDKey] = []string{p.ClientID}
	out[tierKey] = []string{p.Tier}
	// The deadline of ctx goes out as the backend's grpc-timeout.
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, out))
	defer cancel()
	cs, err := g.conn.NewStream(ctx, relayStream, method)
	if err != nil {
		return err
	}

	up := make(chan error, 1)
	go func() {
		err := pumpUp(ss, cs)
		up <- err
		if err != nil {
			cancel() // the backend's stream ends too
		}
	}()

	// nil, nil when the backend answered with trailers only.
	if md, _ := cs.Header(); md != nil {
		if err := ss.SendHeader(responseMD(md)); err != nil {
			return err
		}
	}
	var f frame
	for {
		err := cs.RecvMsg(&f)
		if err != nil {
			ss.SetTrailer(responseMD(cs.Trailer()))
			select {
			case uerr := <-up:
				if uerr != nil {
					return uerr
				}
			default:
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // the backend's status
		}
		err = ss.SendMsg(&f)
		f.free()
		if err != nil {
			return err
		}
	}
}

// pumpUp relays the caller's messages to the backend until the caller
// half-closes, and then half-closes the backend's stream. It returns nil
// when the backend ends the call first, whose status RecvMsg returns.
func pumpUp(ss grpc.ServerStream, cs grpc.ClientStream) error {
	var f frame
	for {
		if err := ss.RecvMsg(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return cs.CloseSend()
			}
			return err
		}
		err := cs.SendMsg(&f)
		f.free()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// refusalStatus is the gRPC status of a refusal of authz.Check, whose
// errors are *connect.Error with codes of the same numbers as gRPC's. The
// error's metadata, such as WWW-Authenticate, goes out in the trailers.
func refusalStatus(ss grpc.ServerStream, err error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return status.Error(codes.Internal, "refused")
	}
	if len(ce.Meta()) > 0 {
		md := make(metadata.MD, len(ce.Meta()))
		for k, v := range ce.Meta() {
			md[strings.ToLower(k)] = v
		}
		ss.SetTrailer(md)
	}
	return status.Error(codes.Code(ce.Code()), ce.Message())
}

// forwardedKey reports whether a caller's metadata key goes to the backend:
// not the credentials, the reserved headers, nor those of the protocol,
// which the outbound client sets itself.
func forwardedKey(k string) bool {
	switch k {
	case "authorization", "dpop", "content-type", "user-agent", "te", "host", "connection",
		"keep-alive", "transfer-encoding", "upgrade", "content-length", "content-encoding", "accept-encoding":
		return false
	}
	return !strings.HasPrefix(k, ":") && !strings.HasPrefix(k, "grpc-") && !hasKeyPrefix(k, "proxy-") &&
		!hasKeyPrefix(k, strings.ToLower(forward.ReservedHeaderPrefix))
}

// hasKeyPrefix reports whether the lower-case key starts with the
// lower-case prefix, reading '_' as '-', as forward does.
func hasKeyPrefix(k, prefix string) bool {
	if len(k) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := k[i]
		if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// responseMD is the backend's header or trailer metadata without the gRPC
// protocol's keys, which the inbound server writes itself.
func responseMD(md metadata.MD) metadata.MD {
	for k := range md {
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") || k == "content-type" {
			delete(md, k)
		}
	}
	return md
}

// frame is one message in transit: grpc-go's buffers, undecoded.
type frame struct{ data mem.BufferSlice }

// free drops the buffers of a message that was not handed on.
func (f *frame) free() {
	f.data.Free()
	f.data = nil
}

// passthroughCodec moves messages as frames, without decoding them. It
// names itself proto, the content subtype the backend expects.
type passthroughCodec struct{}

// Marshal hands the frame's buffers, with their references, to grpc-go,
// which frees them once written.
func (passthroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("passthrough: cannot marshal %T", v)
	}
	data := f.data
	f.data = nil
	return data, nil
}

// Unmarshal keeps the received buffers in the frame, with a reference of
// its own: grpc-go frees its reference when Unmarshal returns.
func (passthroughCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("passthrough: cannot unmarshal into %T", v)
	}
	f.data.Free()
	data.Ref()
	f.data = data
	return nil
}

// Name is the codec's content subtype.
func (passthroughCodec) Name() string { return "proto" }
