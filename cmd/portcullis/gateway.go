package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
)

// runGateway serves the gateway described by a configuration file until
// interrupted, then drains in-flight calls.
func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("gateway", stderr)
	file := fs.String("config", "portcullis.yaml", "the configuration file")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Telemetry.LogLevel)
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(logger))
	if err != nil {
		return err
	}
	defer gw.Close()
	return gw.ListenAndServe(ctx)
}

// newLogger returns a JSON logger at the named level.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	if w == nil {
		w = os.Stderr
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
