package clientcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ParseHeader reads the client certificate that a TLS-terminating proxy
// passes in a request header, given the header's values. Two forms are
// read:
//
//   - Envoy's x-forwarded-client-cert (XFCC): elements separated by
//     commas, each of semicolon-separated key=value pairs, values quoted
//     when they hold those characters. The last element is read, the one
//     the nearest proxy added; its Cert (a URL-encoded PEM certificate) is
//     the leaf, and its Chain, when present, adds the intermediates. A
//     Hash, when present, must be the certificate's (hex SHA-256 of its
//     DER). Subject, URI and DNS are not believed: they are read from the
//     certificate itself.
//   - a PEM certificate, URL-encoded or not, as nginx's
//     $ssl_client_escaped_cert or an AWS load balancer passes it: the
//     first certificate is the leaf, the others intermediates.
//
// It checks the form only: whether the certificate is valid and whose CA
// signed it is the caller's to verify.
func ParseHeader(values []string) (leaf *x509.Certificate, intermediates []*x509.Certificate, err error) {
	v := strings.TrimSpace(strings.Join(values, ","))
	if v == "" {
		return nil, nil, errors.New("the header is empty")
	}
	if isPEM(v) {
		if len(values) > 1 {
			return nil, nil, errors.New("the header is repeated")
		}
		certs, err := unescapePEM(v)
		if err != nil {
			return nil, nil, err
		}
		return certs[0], certs[1:], nil
	}
	return parseXFCC(v)
}

// isPEM reports whether v starts as a PEM block does, URL-encoded or not.
func isPEM(v string) bool {
	return strings.HasPrefix(v, "-----BEGIN") || len(v) > 15 && strings.EqualFold(v[:15], "%2D%2D%2D%2D%2D")
}

// unescapePEM returns the certificates of a PEM text, URL-encoded or not.
// PathUnescape leaves a "+" alone: base64 holds them, and not every proxy
// encodes them. A form encoder's "+" for a space is read as one in the
// armor lines ("-----BEGIN+CERTIFICATE-----"), the only ones with spaces.
func unescapePEM(v string) ([]*x509.Certificate, error) {
	text, err := url.PathUnescape(v)
	if err != nil {
		return nil, errors.New("the certificate is not URL-encoded PEM")
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "-----") {
			lines[i] = strings.ReplaceAll(l, "+", " ")
		}
	}
	var certs []*x509.Certificate
	rest := []byte(strings.Join(lines, "\n"))
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("the header holds a PEM %s, not a certificate", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the certificate does not parse: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("the certificate is not URL-encoded PEM")
	}
	return certs, nil
}

// parseXFCC reads the last element of an XFCC value.
func parseXFCC(v string) (*x509.Certificate, []*x509.Certificate, error) {
	elements, err := split(v, ',')
	if err != nil {
		return nil, nil, err
	}
	pairs, err := split(elements[len(elements)-1], ';')
	if err != nil {
		return nil, nil, err
	}
	fields := map[string]string{}
	for _, p := range pairs {
		key, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q is not key=value", truncate(p))
		}
		key = strings.ToLower(key)
		if _, dup := fields[key]; dup && key != "uri" && key != "dns" {
			return nil, nil, fmt.Errorf("%s is given twice", key)
		}
		if fields[key], err = unquote(value); err != nil {
			return nil, nil, err
		}
	}
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	if c, ok := fields["cert"]; ok {
		certs, err := unescapePEM(c)
		if err != nil {
			return nil, nil, fmt.Errorf("Cert: %w", err)
		}
		leaf = certs[0]
	}
	if c, ok := fields["chain"]; ok {
		certs, err := unescapePEM(c)
		if err != nil {
			return nil, nil, fmt.Errorf("Chain: %w", err)
		}
		if leaf == nil {
			leaf = certs[0]
		}
		for _, c := range certs {
			if !c.Equal(leaf) {
				chain = append(chain, c)
			}
		}
	}
	if leaf == nil {
		return nil, nil, errors.New("no Cert is given")
	}
	if h, ok := fields["hash"]; ok {
		sum := sha256.Sum256(leaf.Raw)
		if !strings.EqualFold(h, hex.EncodeToString(sum[:])) {
			return nil, nil, errors.New("Hash is not the certificate's")
		}
	}
	return leaf, chain, nil
}

// split cuts v at every sep outside double quotes.
func split(v string, sep byte) ([]string, error) {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, errors.New("a quote is not closed")
	}
	return append(parts, v[start:]), nil
}

// unquote strips the quotes of a quoted value and its backslash escapes.
func unquote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return v, nil
	}
	if v[len(v)-1] != '"' {
		return "", errors.New("a quoted value has text after its quote")
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' && i+1 < len(v)-1 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

// truncate bounds what an error quotes of a header.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
