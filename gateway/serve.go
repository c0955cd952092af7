package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ListenAndServe listens on the configured addresses and serves until ctx
// is done, then stops accepting calls and drains those in flight for up to
// the configured shutdown timeout.
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

// Serve is [Gateway.ListenAndServe] on listeners the caller opened.
func (g *Gateway) Serve(ctx context.Context, main, admin net.Listener) error {
	servers := []*http.Server{g.newServer(g.handler), g.newServer(g.admin)}
	listeners := []net.Listener{main, admin}
	if g.cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(g.cfg.TLS.CertFile, g.cfg.TLS.KeyFile)
		if err != nil {
			main.Close()
			admin.Close()
			return fmt.Errorf("tls: %w", err)
		}
		servers[0].TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		listeners[0] = tls.NewListener(main, servers[0].TLSConfig)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	g.logger.Info("gateway serving", "listen", main.Addr().String(), "admin", admin.Addr().String(), "routes", len(g.cfg.Routes), "tls", g.cfg.TLS != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Limits.ShutdownTimeout.Std())
	defer cancel()
	g.logger.Info("gateway draining", "timeout", g.cfg.Limits.ShutdownTimeout.Std().String())
	for _, srv := range servers {
		if e := srv.Shutdown(shutdown); e != nil {
			err = errors.Join(err, e)
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// newServer returns an HTTP server with the configured limits, speaking
// HTTP/1.1 and HTTP/2 (with TLS, or h2c without).
func (g *Gateway) newServer(h http.Handler) *http.Server {
	l := g.cfg.Limits
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(g.cfg.TLS == nil)
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(l.MaxConcurrentStreams),
			MaxReadFrameSize:     1 << 20,
			SendPingTimeout:      15 * time.Second,
			PingTimeout:          15 * time.Second,
		},
		ErrorLog: nil,
	}
}
