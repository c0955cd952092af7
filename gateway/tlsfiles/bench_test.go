package tlsfiles_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"

	"github.com/portcullis/portcullis/gateway/tlsfiles"
	"github.com/portcullis/portcullis/internal/certtest"
)

// BenchmarkHandshake measures a full TLS 1.3 handshake on 127.0.0.1 with
// a listener of [tlsfiles.ServerConfig] (P-256 certificates, no session
// resumption), the client and the server both in the process: plain, and
// mutual (the client's certificate sent and verified against the client
// CAs).
func BenchmarkHandshake(b *testing.B) {
	ca := certtest.NewCA(b, "CA")
	dir := b.TempDir()
	certFile, keyFile := ca.Leaf(b, certtest.Spec{CommonName: "server", IPs: certtest.Loopback}).WriteFiles(b, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	ca.WriteFile(b, caFile)
	client := ca.Leaf(b, certtest.Spec{CommonName: "client"}).TLS()
	cert, err := tlsfiles.LoadKeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	cas, err := tlsfiles.LoadPool([]string{caFile})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		auth tls.ClientAuthType
	}{{"plain", tls.NoClientCert}, {"mutual", tls.RequireAndVerifyClientCert}} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsfiles.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS13}, cert, cas, bc.auth))
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go serveOneByte(ln)
			cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}
			if bc.auth != tls.NoClientCert {
				cfg.Certificates = []tls.Certificate{client}
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(make([]byte, 1)); err != nil { // the server's verdict on the client
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// serveOneByte completes each handshake and writes one byte.
func serveOneByte(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if c.(*tls.Conn).Handshake() == nil {
				_, _ = c.Write([]byte{1})
			}
		}()
	}
}
