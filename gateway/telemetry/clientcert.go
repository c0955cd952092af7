package telemetry

import (
	"log/slog"

	"go.opentelemetry.io/otel/attribute"

	"github.com/portcullis/portcullis/gateway/clientcert"
)

// The attributes of a call's client certificate, in its span and its
// access line: who the certificate names and its thumbprint, never the
// certificate. tls.client.subject is the semantic conventions' name.
const (
	keyCertSubject    = attribute.Key("tls.client.subject")
	keyCertURIs       = attribute.Key("tls.client.san_uri")
	keyCertDNSNames   = attribute.Key("tls.client.san_dns")
	keyCertThumbprint = attribute.Key("tls.client.thumbprint")
)

// certSpanAttributes returns the span attributes of a client certificate.
func certSpanAttributes(id *clientcert.Identity) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, keyCertSubject.String(id.Subject), keyCertThumbprint.String(id.Thumbprint))
	if len(id.URIs) > 0 {
		attrs = append(attrs, keyCertURIs.StringSlice(id.URIs))
	}
	if len(id.DNSNames) > 0 {
		attrs = append(attrs, keyCertDNSNames.StringSlice(id.DNSNames))
	}
	return attrs
}

// appendCertLog appends the access line attributes of a client
// certificate to attrs[:n], which has room for four, and returns the new n.
func appendCertLog(attrs []slog.Attr, n int, id *clientcert.Identity) int {
	attrs[n] = slog.String(string(keyCertSubject), id.Subject)
	attrs[n+1] = slog.String(string(keyCertThumbprint), id.Thumbprint)
	n += 2
	if len(id.URIs) > 0 {
		attrs[n] = slog.Any(string(keyCertURIs), id.URIs)
		n++
	}
	if len(id.DNSNames) > 0 {
		attrs[n] = slog.Any(string(keyCertDNSNames), id.DNSNames)
		n++
	}
	return n
}
