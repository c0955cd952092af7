package main

import (
	"context"
	"log/slog"
	"net"
	"os"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
)

// serveGRPCListen serves the whole gateway's gRPC listener (grpc_listen)
// on ln until ctx is done, in this process, so that the tests of the
// grpc-go relays hold the gateway to what they hold them to:
//
//	loadtest grpclisten -listen ADDR -backend URL -jwks FILE
//
// The load runs measure the gRPC listener as the experiment grpc-listen,
// in the portcullis binary.
func serveGRPCListen(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	// The main and admin listeners are the configuration's placeholders,
	// opened here on ports of their own.
	cfg, err := config.Parse("grpclisten.yaml", []byte(gatewayConfig("127.0.0.1:1", "127.0.0.1:2", jwksFile, backend, 0)), os.LookupEnv)
	if err != nil {
		_ = ln.Close()
		return err
	}
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer gw.Close()
	ls := gateway.Listeners{GRPC: ln}
	if ls.Main, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		_ = ln.Close()
		return err
	}
	if ls.Admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		_ = ln.Close()
		_ = ls.Main.Close()
		return err
	}
	return gw.ServeListeners(ctx, ls)
}
