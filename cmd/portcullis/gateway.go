package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

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
	if tuneGC(os.LookupEnv) {
		logger.Debug("garbage collector tuned", "gogc", gatewayGOGC)
	}
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(logger), gateway.WithConfigFile(*file))
	if err != nil {
		return err
	}
	defer gw.Close()
	reloadOnHangup(ctx, gw)
	return gw.ListenAndServe(ctx)
}

// reloadOnHangup reads the configuration file again on each SIGHUP until
// ctx is done. A refused reload keeps the running configuration; the
// gateway logs and counts it.
func reloadOnHangup(ctx context.Context, gw *gateway.Gateway) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = gw.ReloadFile(ctx)
			}
		}
	}()
}

// gatewayGOGC is the gateway's garbage-collection target when GOGC is not
// set. A gateway's live heap is small and its allocation rate high: at
// Go's default of 100 the collector runs every few megabytes and takes a
// quarter of the CPU of a call (see BENCHMARKS.md). 400 trades some tens of
// megabytes of heap for that CPU. GOGC, and GOMEMLIMIT as a ceiling, still
// rule when set.
const gatewayGOGC = 400

// tuneGC sets the garbage-collection target to gatewayGOGC unless the
// environment sets GOGC, and reports whether it did.
func tuneGC(lookupEnv func(string) (string, bool)) bool {
	if _, ok := lookupEnv("GOGC"); ok {
		return false
	}
	debug.SetGCPercent(gatewayGOGC)
	return true
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
