package gateway

import (
	"log/slog"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestNewServer pins the listener's settings: HTTP/1.1, HTTP/2 and h2c
// without TLS, the configured limits, and no whole-request timeouts, which
// would cut long streams.
func TestNewServer(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
routes: [{service: example.licensing.v1.LicensingService, backend: "http://127.0.0.1:1"}]
limits: {max_concurrent_streams: 7, read_header_timeout: 3s, idle_timeout: 1m}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{cfg: cfg, logger: slog.New(slog.DiscardHandler)}
	srv := g.newServer(nil)
	if srv.HTTP2.MaxConcurrentStreams != 7 || srv.ReadHeaderTimeout != 3*time.Second || srv.IdleTimeout != time.Minute || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("server = %+v", srv)
	}
	if !srv.Protocols.UnencryptedHTTP2() || !srv.Protocols.HTTP2() || !srv.Protocols.HTTP1() {
		t.Errorf("protocols = %v", srv.Protocols)
	}
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Errorf("read/write timeouts = %v/%v", srv.ReadTimeout, srv.WriteTimeout)
	}
	if srv.ErrorLog == nil {
		t.Error("net/http's own messages would go to the standard logger, not the structured log")
	}
}
