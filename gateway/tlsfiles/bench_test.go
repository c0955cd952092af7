package tlsfiles_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

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

// BenchmarkHandshakePaired alternates a plain and a mutual handshake in
// each iteration, so that both meet the same load on a shared machine,
// and reports the median of each and their ratio (mutual/plain).
func BenchmarkHandshakePaired(b *testing.B) {
	ca := certtest.NewCA(b, "CA")
	dir := b.TempDir()
	certFile, keyFile := ca.Leaf(b, certtest.Spec{CommonName: "server", IPs: certtest.Loopback}).WriteFiles(b, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	ca.WriteFile(b, caFile)
	cert, err := tlsfiles.LoadKeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	cas, err := tlsfiles.LoadPool([]string{caFile})
	if err != nil {
		b.Fatal(err)
	}
	listen := func(auth tls.ClientAuthType) net.Listener {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsfiles.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS13}, cert, cas, auth))
		if err != nil {
			b.Fatal(err)
		}
		go serveOneByte(ln)
		return ln
	}
	plain, mutual := listen(tls.NoClientCert), listen(tls.RequireAndVerifyClientCert)
	defer plain.Close()
	defer mutual.Close()
	plainCfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}
	mutualCfg := plainCfg.Clone()
	mutualCfg.Certificates = []tls.Certificate{ca.Leaf(b, certtest.Spec{CommonName: "client"}).TLS()}
	handshake := func(ln net.Listener, cfg *tls.Config) time.Duration {
		start := time.Now()
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		c.Close()
		return d
	}
	var p, m []time.Duration
	for b.Loop() {
		p = append(p, handshake(plain, plainCfg))
		m = append(m, handshake(mutual, mutualCfg))
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	mp, mm := median(p), median(m)
	b.ReportMetric(mp, "plain-ns")
	b.ReportMetric(mm, "mutual-ns")
	b.ReportMetric(mm/mp, "mutual/plain")
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
