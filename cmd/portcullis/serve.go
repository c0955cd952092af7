package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// serve serves h on ln over HTTP/1.1 and h2c until ctx is done, then shuts
// down gracefully, draining calls in flight for up to drain and closing
// what is still open then.
func serve(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if errors.Is(err, context.DeadlineExceeded) {
		// The drain time is up: what is still open, such as a long poll
		// of a follower, is cut. That ends the drain; it is no failure.
		err = srv.Close()
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// newMux returns a mux serving h under path.
func newMux(path string, h http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return mux
}

// named prefixes a part's error with its name.
func named(part string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", part, err)
	}
	return nil
}
