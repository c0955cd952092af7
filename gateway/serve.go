package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ListenAndServe listens on the configured addresses and serves until ctx
// is done, then drains: see [Gateway.Serve].
func (g *Gateway) ListenAndServe(ctx context.Context) error {
	main, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return err
	}
	admin, err := net.Listen("tcp", g.cfg.Admin)
	if err != nil {
		main.Close()
		return err
	}
	return g.Serve(ctx, main, admin)
}

// stopGrace is how long calls ended by the drain deadline get to write
// their Unavailable status before their connections are closed.
const stopGrace = time.Second

// Serve is [Gateway.ListenAndServe] on listeners the caller opened. It
// serves until ctx is done, then drains the main listener:
//
//  1. it stops accepting connections at once, tells HTTP/2 clients to go
//     away (GOAWAY) and reports itself not ready and not serving;
//  2. calls in flight go on for up to the configured drain time
//     (limits.shutdown_timeout);
//  3. calls still open then, long streams typically, end with Unavailable
//     and the message "gateway shutting down", so that clients retry
//     elsewhere, and the connections are closed.
//
// The admin listener stops last, so that /readyz says "draining" meanwhile.
// A drain that ends this way is a clean stop: Serve returns nil.
func (g *Gateway) Serve(ctx context.Context, main, admin net.Listener) error {
	servers := []*http.Server{g.newServer(g.handler), g.newServer(g.admin)}
	listeners := []net.Listener{bufferedListener{main}, admin}
	if g.tlsConfig != nil {
		// Certificate and client CAs as the files on disk say at each
		// handshake: see newListenerTLS.
		servers[0].TLSConfig = g.tlsConfig
		listeners[0] = tls.NewListener(main, g.tlsConfig)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	g.logger.Info("gateway serving", "listen", main.Addr().String(), "admin", admin.Addr().String(), "routes", len(g.cfg.Routes), "tls", g.tlsConfig != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, g.drain(servers[0], servers[1]))
}

// drain stops the main server as [Gateway.Serve] describes, then the admin
// server.
func (g *Gateway) drain(main, admin *http.Server) error {
	timeout := g.cfg.Limits.ShutdownTimeout.Std()
	g.draining.Store(true)
	g.logger.Info("gateway draining", "timeout", timeout.String())
	start := time.Now()
	deadline, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := main.Shutdown(deadline)
	if errors.Is(err, context.DeadlineExceeded) {
		// Calls still open: end them with Unavailable, let them write it,
		// then close what is left.
		g.stopCalls()
		grace, cancelGrace := context.WithTimeout(context.Background(), stopGrace)
		err = main.Shutdown(grace)
		cancelGrace()
		if errors.Is(err, context.DeadlineExceeded) {
			err = main.Close()
		}
		g.logger.Warn("gateway drain deadline reached: calls still open were ended with Unavailable", "after", time.Since(start).Round(time.Millisecond).String())
	} else {
		g.logger.Info("gateway drained", "after", time.Since(start).Round(time.Millisecond).String())
	}
	quick, cancelQuick := context.WithTimeout(context.Background(), stopGrace)
	defer cancelQuick()
	if e := admin.Shutdown(quick); e != nil {
		err = errors.Join(err, admin.Close())
	}
	return err
}

// stopCalls ends every call still in flight, once.
func (g *Gateway) stopCalls() {
	g.stopOnce.Do(func() { close(g.stop) })
}

// newServer returns an HTTP server with the configured limits, speaking
// HTTP/1.1 and HTTP/2 (with TLS, or h2c without). It sets no ReadTimeout or
// WriteTimeout, which would cut long streams: the forwarding handlers bound
// the time to receive a request body and a stream's idle time instead, and
// the deadline of every call.
func (g *Gateway) newServer(h http.Handler) *http.Server {
	l := g.cfg.Limits
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(g.tlsConfig == nil)
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(l.MaxConcurrentStreams),
			MaxReadFrameSize:     1 << 20,
			// Probe silent connections; drop those whose client is gone.
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     15 * time.Second,
		},
		// net/http's own complaints (TLS handshake errors, bad requests)
		// go to the structured log like every other line.
		ErrorLog: slog.NewLogLogger(g.logger.Handler(), slog.LevelInfo),
	}
}
