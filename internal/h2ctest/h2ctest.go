// Package h2ctest starts what tests need to speak HTTP/2 without TLS
// (h2c), as gRPC clients, the gateway and its backends do: real servers on
// 127.0.0.1 and clients of them.
package h2ctest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Serve serves h over HTTP/1.1 and h2c on 127.0.0.1 until the test ends,
// and returns its URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	return Start(t, h).URL
}

// Start is [Serve] returning the server, for tests that close it early or
// read its address.
func Start(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// Transport returns a client transport that speaks h2c only, with prior
// knowledge, as gRPC clients do.
func Transport() *http.Transport {
	t := &http.Transport{Protocols: new(http.Protocols)}
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}

// Client returns a client of [Transport] whose idle connections close when
// the test ends.
func Client(t testing.TB) *http.Client {
	tr := Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
