package main

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/orders"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// grpcRelays are the subcommands of the experiments that relay gRPC calls
// on grpc-go's transport, on both sides or on one.
var grpcRelays = []string{"grpcrelay", "grpcin", "grpcout", "grpclisten", "framerelay"}

// forEachGRPCRelay runs test once for each of grpcRelays.
func forEachGRPCRelay(t *testing.T, test func(t *testing.T, relay string)) {
	for _, relay := range grpcRelays {
		t.Run(relay, func(t *testing.T) { test(t, relay) })
	}
}

// grpcRelayStack is the orders service, served in the test, behind the
// gRPC relay of the subcommand's name, also in the test; it returns the
// relay's URL and the mint of the tokens it accepts.
func grpcRelayStack(t *testing.T, relay string) (string, *tokenMint) {
	t.Helper()
	mint, jwksFile := testIssuer(t)
	_, h := orders.New().Handler()
	return startGRPCRelay(t, relay, h2ctest.Serve(t, h), jwksFile), mint
}

// testIssuer returns the mint of a new issuer's tokens and the file of its
// key set.
func testIssuer(t *testing.T) (*tokenMint, string) {
	t.Helper()
	key, err := newSigningKey("loadtest")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := writeJSON(jwksFile, set); err != nil {
		t.Fatal(err)
	}
	return &tokenMint{key: key}, jwksFile
}

// startGRPCRelay serves the gRPC relay of the subcommand's name to backend
// until the test ends, and returns its URL.
func startGRPCRelay(t *testing.T, relay, backend, jwksFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- subcommands[relay](ctx, ln, backend, jwksFile) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", relay, err)
		}
	})
	return "http://" + ln.Addr().String()
}

func mustToken(t *testing.T, m *tokenMint, c claims) string {
	t.Helper()
	tok, err := m.token(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// withoutWrite is a token's claims lacking ORD.WRITE, which PlaceOrder
// and SyncOrders require.
var withoutWrite = claims{perms: map[string]uint64{"ORD": 1, "LIC": 7}}

// TestGRPCRelayConnectClient: through the relay, connect-go's gRPC client
// places an order as the token's client (not as the header it forges),
// exchanges orders on a bidi stream, gets the backend's own errors with
// their details, and is refused without a token or a permission.
func TestGRPCRelayConnectClient(t *testing.T) {
	forEachGRPCRelay(t, func(t *testing.T, relay string) {
		relayURL, mint := grpcRelayStack(t, relay)
		client := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(t), relayURL, connect.WithGRPC())
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		place := func(tok string, o *ordersv1.Order) (*connect.Response[ordersv1.PlaceOrderResponse], error) {
			req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: o})
			if tok != "" {
				req.Header().Set("Authorization", "Bearer "+tok)
			}
			req.Header().Set(identityHeader, "mallory")
			return client.PlaceOrder(ctx, req)
		}

		notes := strings.Repeat("n", 1<<20) // many frames, pooled buffers
		res, err := place(mustToken(t, mint, claims{}), &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}, Notes: notes})
		if err != nil {
			t.Fatal(err)
		}
		o := res.Msg.GetOrder()
		if o.GetId() == "" || o.GetCustomerId() != "cust-1" || o.GetNotes() != notes {
			t.Errorf("placed order %q for %q with %d bytes of notes, want an id, cust-1, %d bytes", o.GetId(), o.GetCustomerId(), len(o.GetNotes()), len(notes))
		}
		if got := o.GetPlacedBy(); got != "loadtest" {
			t.Errorf("placed_by = %q, want the token's client_id loadtest", got)
		}

		_, err = place(mustToken(t, mint, claims{}), &ordersv1.Order{Skus: []string{"sku-1"}})
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Fatalf("an order without a customer: %v, want the backend's invalid_argument", err)
		}
		if len(ce.Details()) != 1 {
			t.Fatalf("invalid_argument with %d details, want the backend's BadRequest", len(ce.Details()))
		}
		if v, err := ce.Details()[0].Value(); err != nil {
			t.Error(err)
		} else if br, ok := v.(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "order.customer_id" {
			t.Errorf("detail %v, want the backend's BadRequest on order.customer_id", v)
		}

		stream := client.SyncOrders(ctx)
		stream.RequestHeader().Set("Authorization", "Bearer "+mustToken(t, mint, claims{}))
		var ids []string
		for i := range 3 {
			if err := stream.Send(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "cust-sync", Skus: []string{"sku-1"}, TotalCents: int64(i)}}); err != nil {
				t.Fatal(err)
			}
			got, err := stream.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if got.GetOrder().GetPlacedBy() != "loadtest" || got.GetOrder().GetTotalCents() != int64(i) {
				t.Errorf("synced %v, want placed by loadtest for %d cents", got.GetOrder(), i)
			}
			ids = append(ids, got.GetOrder().GetId())
		}
		if err := stream.CloseRequest(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
			t.Errorf("after the last order: %v, want the end of the stream", err)
		}
		if err := stream.CloseResponse(); err != nil {
			t.Error(err)
		}
		if ids[0] == ids[1] || ids[1] == ids[2] {
			t.Errorf("synced orders got ids %v, want new ones", ids)
		}

		if _, err := place("", &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}}); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("no token: %v, want unauthenticated", err)
		}
		if _, err := place(mustToken(t, mint, withoutWrite), &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}}); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("a token without ORD.WRITE: %v, want permission_denied", err)
		}
		other, err := newSigningKey("other")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := place(mustToken(t, mint, claims{wrongKey: other}), &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}}); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("a token signed by another key: %v, want unauthenticated", err)
		}
	})
}

// TestGRPCRelayGRPCClient: grpc-go's client gets the same through the
// relay: a unary call, a bidi stream whose requests all go before the
// answers are read, the refusals, and the backend's own statuses.
func TestGRPCRelayGRPCClient(t *testing.T) {
	forEachGRPCRelay(t, func(t *testing.T, relay string) {
		relayURL, mint := grpcRelayStack(t, relay)
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(relayURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		as := func(tok string) context.Context {
			if tok == "" {
				return ctx
			}
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok, identityHeader, "mallory")
		}
		place := func(ctx context.Context) (*ordersv1.PlaceOrderResponse, error) {
			res := new(ordersv1.PlaceOrderResponse)
			req := &ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "cust-2", Skus: []string{"sku-1", "sku-2"}}}
			return res, conn.Invoke(ctx, ordersv1connect.OrdersServicePlaceOrderProcedure, req, res)
		}

		res, err := place(as(mustToken(t, mint, claims{})))
		if err != nil {
			t.Fatal(err)
		}
		if o := res.GetOrder(); o.GetId() == "" || o.GetCustomerId() != "cust-2" || len(o.GetSkus()) != 2 || o.GetPlacedBy() != "loadtest" {
			t.Errorf("placed %v, want an order of cust-2's 2 skus placed by loadtest", o)
		}

		stream, err := conn.NewStream(as(mustToken(t, mint, claims{})), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, ordersv1connect.OrdersServiceSyncOrdersProcedure)
		if err != nil {
			t.Fatal(err)
		}
		// All requests first, then the answers: the relay pumps both ways.
		for i := range 3 {
			if err := stream.SendMsg(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{CustomerId: "cust-sync", Skus: []string{"sku-1"}, TotalCents: int64(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			got := new(ordersv1.SyncOrdersResponse)
			if err := stream.RecvMsg(got); err != nil {
				t.Fatal(err)
			}
			if got.GetOrder().GetTotalCents() != int64(i) || got.GetOrder().GetPlacedBy() != "loadtest" {
				t.Errorf("synced %v, want placed by loadtest for %d cents", got.GetOrder(), i)
			}
		}
		if err := stream.RecvMsg(new(ordersv1.SyncOrdersResponse)); !errors.Is(err, io.EOF) {
			t.Errorf("after the last order: %v, want the end of the stream", err)
		}
		if md, err := stream.Header(); err != nil || md == nil {
			t.Errorf("stream header %v, %v: want the backend's", md, err)
		}

		// The backend ends a stream whose caller is still sending.
		stream, err = conn.NewStream(as(mustToken(t, mint, claims{})), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, ordersv1connect.OrdersServiceSyncOrdersProcedure)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Skus: []string{"sku-1"}}}); err != nil {
			t.Fatal(err)
		}
		if err := stream.RecvMsg(new(ordersv1.SyncOrdersResponse)); status.Code(err) != codes.InvalidArgument {
			t.Errorf("syncing an order without a customer: %v, want the backend's InvalidArgument", err)
		}

		if _, err := place(as("")); status.Code(err) != codes.Unauthenticated {
			t.Errorf("no token: %v, want Unauthenticated", err)
		}
		if _, err := place(as(mustToken(t, mint, withoutWrite))); status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "ORD.WRITE") {
			t.Errorf("a token without ORD.WRITE: %v, want PermissionDenied naming ORD.WRITE", err)
		}
		if _, err := place(as(mustToken(t, mint, claims{expired: true}))); status.Code(err) != codes.Unauthenticated {
			t.Errorf("an expired token: %v, want Unauthenticated", err)
		}

		// The backend answers GetOrder of a missing order with NotFound.
		get := func(ctx context.Context) error {
			return conn.Invoke(ctx, ordersv1connect.OrdersServiceGetOrderProcedure, &ordersv1.GetOrderRequest{Id: "ord-9999"}, new(ordersv1.GetOrderResponse))
		}
		if err := get(as(mustToken(t, mint, claims{}))); status.Code(err) != codes.NotFound {
			t.Errorf("GetOrder of a missing order: %v, want the backend's NotFound", err)
		}
	})
}

// TestGRPCRelayMetadata: behind the relay, a gRPC server that echoes
// messages sees the caller's metadata without the credentials and with the
// identity from the token, not the forged one, and the caller's deadline;
// the caller gets the server's header and trailer metadata and its status.
func TestGRPCRelayMetadata(t *testing.T) {
	forEachGRPCRelay(t, func(t *testing.T, relay string) {
		mint, jwksFile := testIssuer(t)
		type seen struct {
			md       metadata.MD
			deadline time.Duration
		}
		saw := make(chan seen, 1)
		echo := func(_ any, ss grpc.ServerStream) error {
			if m, _ := grpc.MethodFromServerStream(ss); m == "/grpc.health.v1.Health/Check" {
				return status.Error(codes.Unimplemented, "no health service") // a gateway's probe
			}
			md, _ := metadata.FromIncomingContext(ss.Context())
			var left time.Duration
			if d, ok := ss.Context().Deadline(); ok {
				left = time.Until(d)
			}
			saw <- seen{md, left}
			if err := ss.SendHeader(metadata.Pairs("x-backend-header", "h")); err != nil {
				return err
			}
			var f frame
			for {
				if err := ss.RecvMsg(&f); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					return err
				}
				err := ss.SendMsg(&f)
				f.free()
				if err != nil {
					return err
				}
			}
			ss.SetTrailer(metadata.Pairs("x-backend-trailer", "t"))
			return status.Error(codes.FailedPrecondition, "echoed")
		}
		srv := grpc.NewServer(grpc.UnknownServiceHandler(echo), grpc.ForceServerCodecV2(passthroughCodec{}))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(srv.Stop)
		relayURL := startGRPCRelay(t, relay, "http://"+ln.Addr().String(), jwksFile)

		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(relayURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Second)
		defer cancel()
		tok := mustToken(t, mint, claims{})
		ctx = metadata.AppendToOutgoingContext(ctx,
			"authorization", "Bearer "+tok,
			"x-caller", "c",
			"portcullis-tier", "gold", "portcullis_client_id", "mallory")
		stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, ordersv1connect.OrdersServiceSyncOrdersProcedure)
		if err != nil {
			t.Fatal(err)
		}
		sent := &ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "ord-7", CustomerId: "cust-7"}}
		for range 2 {
			if err := stream.SendMsg(sent); err != nil {
				t.Fatal(err)
			}
			got := new(ordersv1.SyncOrdersRequest)
			if err := stream.RecvMsg(got); err != nil {
				t.Fatal(err)
			}
			if got.GetOrder().GetId() != "ord-7" || got.GetOrder().GetCustomerId() != "cust-7" {
				t.Errorf("echoed %v, want %v", got, sent)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		err = stream.RecvMsg(new(ordersv1.SyncOrdersRequest))
		if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != "echoed" {
			t.Errorf("status %v, want the backend's FailedPrecondition: echoed", err)
		}
		if md, _ := stream.Header(); len(md.Get("x-backend-header")) != 1 {
			t.Errorf("header %v, want the backend's x-backend-header", md)
		}
		if md := stream.Trailer(); len(md.Get("x-backend-trailer")) != 1 {
			t.Errorf("trailer %v, want the backend's x-backend-trailer", md)
		}

		s := <-saw
		wants := map[string][]string{
			"x-caller":             {"c"},
			"portcullis-client-id": {"loadtest"},
			"portcullis-tier":      {"bench"},
			"portcullis_client_id": nil,
			"authorization":        nil,
		}
		if relay == "grpclisten" {
			// The whole gateway: with identity: forward, its default, the
			// backend gets the caller's verified token too.
			wants["authorization"] = []string{"Bearer " + tok}
		}
		for key, want := range wants {
			if got := s.md.Get(key); !slices.Equal(got, want) {
				t.Errorf("the backend saw %s: %q, want %q", key, got, want)
			}
		}
		if s.deadline < 190*time.Second || s.deadline > 200*time.Second {
			t.Errorf("the backend's deadline is %v away, want the caller's 200s", s.deadline)
		}
	})
}
