package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/portcullis/portcullis/gateway/forward"
)

// ListenAndServe listens on the configured addresses (listen, admin, and
// grpc_listen when set) and serves until ctx is done, then drains: see
// [Gateway.ServeListeners].
func (g *Gateway) ListenAndServe(ctx context.Context) error {
	var ls Listeners
	var err error
	closeAll := func() {
		for _, ln := range []net.Listener{ls.Main, ls.Admin, ls.GRPC} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if ls.Main, err = net.Listen("tcp", g.cfg.Listen); err != nil {
		return err
	}
	if ls.Admin, err = net.Listen("tcp", g.cfg.Admin); err != nil {
		closeAll()
		return err
	}
	if g.cfg.GRPCListen != "" {
		if ls.GRPC, err = net.Listen("tcp", g.cfg.GRPCListen); err != nil {
			closeAll()
			return err
		}
	}
	return g.ServeListeners(ctx, ls)
}

// stopGrace is how long calls ended by the drain deadline get to write
// their Unavailable status before their connections are closed.
const stopGrace = time.Second

// Listeners are the listeners a gateway serves: see
// [Gateway.ServeListeners].
type Listeners struct {
	Main  net.Listener // every protocol, on net/http's HTTP/1.1 and HTTP/2
	Admin net.Listener // the operator's endpoints
	GRPC  net.Listener // gRPC alone, on grpc-go's transport; nil: none
}

// Serve is [Gateway.ServeListeners] on a main and an admin listener.
func (g *Gateway) Serve(ctx context.Context, main, admin net.Listener) error {
	return g.ServeListeners(ctx, Listeners{Main: main, Admin: admin})
}

// ServeListeners serves on listeners the caller opened until ctx is done,
// then drains the main and gRPC listeners:
//
//  1. they stop accepting connections at once, tell HTTP/2 clients to go
//     away (GOAWAY) and the gateway reports itself not ready and not
//     serving;
//  2. calls in flight go on for up to the configured drain time
//     (limits.shutdown_timeout);
//  3. calls still open then, long streams typically, end with Unavailable
//     and the message "gateway shutting down", so that clients retry
//     elsewhere, and the connections are closed.
//
// The admin listener stops last, so that /readyz says "draining" meanwhile.
// A drain that ends this way is a clean stop: ServeListeners returns nil.
//
// The gRPC listener (grpc_listen) serves gRPC callers on grpc-go's
// transport: each call of a routed service passes the same edge, decision
// and forwarding as on the main listener (see [forward.Service.ServeGRPC]);
// every other call (health, reflection, unknown services) is served by the
// main listener's handler through an adapter.
func (g *Gateway) ServeListeners(ctx context.Context, ls Listeners) error {
	servers := []*http.Server{g.newServer(g.handler), g.newServer(g.admin)}
	// The gateway reports itself draining once the main listener is
	// closed (Shutdown closes it, then runs this): from then on, a new
	// connection is refused.
	servers[0].RegisterOnShutdown(func() { g.draining.Store(true) })
	listeners := []net.Listener{bufferedListener{ls.Main}, ls.Admin}
	if g.tlsConfig != nil {
		// Certificate and client CAs as the files on disk say at each
		// handshake: see newListenerTLS.
		servers[0].TLSConfig = g.tlsConfig
		listeners[0] = tls.NewListener(ls.Main, g.tlsConfig)
	}
	var grpcServer *grpc.Server
	if ls.GRPC != nil {
		// Built before net/http's servers start: they add their protocols
		// to the TLS configuration they are given.
		grpcServer = g.newGRPCServer()
	}
	errc := make(chan error, len(servers)+1)
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	if grpcServer != nil {
		go func() { errc <- grpcServer.Serve(ls.GRPC) }()
	}
	attrs := []any{"listen", ls.Main.Addr().String(), "admin", ls.Admin.Addr().String(), "routes", len(g.cfg.Routes), "tls", g.tlsConfig != nil}
	if ls.GRPC != nil {
		attrs = append(attrs, "grpc_listen", ls.GRPC.Addr().String())
	}
	g.logger.Info("gateway serving", attrs...)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return errors.Join(err, g.drain(servers[0], servers[1], grpcServer))
}

// grpcStreamWorkers is the number of goroutines the gRPC listener keeps
// to serve calls, whose stacks have grown to what a call needs; a call
// that finds them all busy gets a goroutine of its own, as without them.
const grpcStreamWorkers = 64

// newGRPCServer returns the server of the gRPC listener, with the limits
// of the main listener's.
func (g *Gateway) newGRPCServer() *grpc.Server {
	l := g.cfg.Limits
	opts := append(forward.GRPCServerOptions(l.MaxMessageBytes),
		grpc.UnknownServiceHandler(g.serveGRPC),
		grpc.MaxConcurrentStreams(uint32(l.MaxConcurrentStreams)),
		grpc.MaxHeaderListSize(64<<10),
		// Probe silent connections; drop those whose client is gone.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.IdleTimeout.Std(),
			Time:              15 * time.Second,
			Timeout:           15 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(grpcStreamWorkers),
	)
	if t := l.ReadHeaderTimeout.Std(); t > 0 {
		opts = append(opts, grpc.ConnectionTimeout(t))
	}
	if g.tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(g.tlsConfig.Clone())))
	}
	return grpc.NewServer(opts...)
}

// serveGRPC serves a call of the gRPC listener on the generation serving
// new calls, to the end.
func (g *Gateway) serveGRPC(_ any, ss grpc.ServerStream) error {
	reserveStack()
	gen := g.acquire()
	defer gen.release()
	procedure, _ := grpc.MethodFromServerStream(ss)
	if svc := gen.services[forward.ServiceOf(procedure)]; svc != nil {
		return svc.ServeGRPC(ss, gen.grpcEdge)
	}
	return forward.ServeGRPCOverHTTP(ss, gen.handler)
}

// drain stops the main and gRPC servers as [Gateway.ServeListeners]
// describes, then the admin server.
func (g *Gateway) drain(main, admin *http.Server, grpcServer *grpc.Server) error {
	timeout := g.cfg.Limits.ShutdownTimeout.Std()
	g.logger.Info("gateway draining", "timeout", timeout.String())
	start := time.Now()
	deadline, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	grpcDone := make(chan struct{})
	if grpcServer != nil {
		go func() {
			grpcServer.GracefulStop()
			close(grpcDone)
		}()
	} else {
		close(grpcDone)
	}
	err := main.Shutdown(deadline)
	if err == nil {
		select {
		case <-grpcDone:
		case <-deadline.Done():
			err = deadline.Err()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// Calls still open: end them with Unavailable, let them write it,
		// then close what is left.
		g.stopCalls()
		grace, cancelGrace := context.WithTimeout(context.Background(), stopGrace)
		err = main.Shutdown(grace)
		if err == nil {
			select {
			case <-grpcDone:
			case <-grace.Done():
			}
		}
		cancelGrace()
		if errors.Is(err, context.DeadlineExceeded) {
			err = main.Close()
		}
		if grpcServer != nil {
			grpcServer.Stop()
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
