package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDevLogger: the lines "portcullis dev" writes for records other than
// access lines, and for access lines of each kind.
func TestDevLogger(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 10, 20, 10, 42, 7, 0, time.UTC)
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{{
		name: "message",
		log:  func(l *slog.Logger) { l.Info("gateway serving", "listen", "127.0.0.1:8080", "routes", 2) },
		want: "10:42:07 gateway serving listen=127.0.0.1:8080 routes=2",
	}, {
		name: "level, quoting, groups",
		log: func(l *slog.Logger) {
			l.With("store", "redis").WithGroup("limit").Warn("rate limit store unavailable", "error", `dial "x": refused`, slog.Group("retry", "in", time.Second), "empty", "")
		},
		want: `10:42:07 WARN rate limit store unavailable store=redis limit.error="dial \"x\": refused" limit.retry.in=1s limit.empty=""`,
	}, {
		name: "below the level",
		log:  func(l *slog.Logger) { l.Debug("noise") },
	}, {
		name: "allowed call",
		log: func(l *slog.Logger) {
			l.Info("call", "procedure", "/example.orders.v1.OrdersService/GetOrder", "protocol", "grpc", "code", "ok", "duration_ms", 3.6123,
				"outcome", "allowed", "peer", "127.0.0.1:5555", "client_id", "reader", "tier", "free", "token_hash", "b6345c2bac01d581", "trace_id", "0af7651916cd43dd8448eb211c80319c")
		},
		want: "10:42:07 call /example.orders.v1.OrdersService/GetOrder grpc ok allowed 3.6ms client_id=reader tier=free trace_id=0af7651916cd43dd8448eb211c80319c",
	}, {
		name: "denied call",
		log: func(l *slog.Logger) {
			l.Info("call", "procedure", "/example.orders.v1.OrdersService/PlaceOrder", "protocol", "connect", "code", "permission_denied", "duration_ms", 0.2123,
				"outcome", "denied", "peer", "127.0.0.1:5555", "client_id", "reader", "missing_permissions", []string{"ORD.WRITE", "LIC.READ_REQUIREMENTS"}, "error", "missing ORD.WRITE, LIC.READ_REQUIREMENTS")
		},
		want: "10:42:07 call /example.orders.v1.OrdersService/PlaceOrder connect permission_denied denied 212µs client_id=reader missing_permissions=ORD.WRITE,LIC.READ_REQUIREMENTS",
	}, {
		name: "failed call",
		log: func(l *slog.Logger) {
			l.Warn("call", "procedure", "/example.orders.v1.OrdersService/GetOrder", "protocol", "grpc", "code", "unavailable", "duration_ms", 1503.2,
				"outcome", "error", "error", "backend unreachable")
		},
		want: `10:42:07 WARN call /example.orders.v1.OrdersService/GetOrder grpc unavailable error 1.5s error="backend unreachable"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			l := slog.New(timeHandler{newDevLogger(&b, slog.LevelInfo).Handler(), at})
			tc.log(l)
			if got := strings.TrimSuffix(b.String(), "\n"); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// timeHandler sets the time of every record.
type timeHandler struct {
	slog.Handler
	at time.Time
}

func (h timeHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Time = h.at
	return h.Handler.Handle(ctx, r)
}

func (h timeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return timeHandler{h.Handler.WithAttrs(attrs), h.at}
}

func (h timeHandler) WithGroup(name string) slog.Handler {
	return timeHandler{h.Handler.WithGroup(name), h.at}
}
