package metadata

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// parseIdentifier parses a resource identifier: an https URL (http on a
// loopback host), without user information, query or fragment, whose path
// can be served as it is written.
func parseIdentifier(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("is required, such as https://api.example.com")
	}
	u, err := parseSecureURL(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("%q has a query", s)
	}
	if !servablePath(u) {
		return nil, fmt.Errorf("%q has a path other than '/' and segments of letters, digits, '-', '.', '_' and '~'", s)
	}
	return u, nil
}

// CheckIssuer reports why s cannot be listed as an authorization server:
// an issuer identifier (RFC 8414 §2) is an https URL (http on a loopback
// host, for local development) without user information, query or
// fragment.
func CheckIssuer(s string) error {
	u, err := parseSecureURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%q has a query", s)
	}
	return nil
}

// parseSecureURL parses an absolute https URL, or an http URL of a
// loopback host.
func parseSecureURL(s string) (*url.URL, error) {
	u, err := parseURL(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("%q is not https (http only for a loopback host)", s)
	}
	return u, nil
}

// parseURL parses an absolute http or https URL with a host, without user
// information or fragment, and in printable ASCII without spaces, quotes
// or backslashes, so that it can be quoted in a header as it is.
func parseURL(s string) (*url.URL, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
		return nil, fmt.Errorf("%q is not printable ASCII without spaces, quotes or backslashes", s)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "":
		return nil, fmt.Errorf("%q is not an absolute http or https URL", s)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q has user information", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("%q has a fragment", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q has a port out of range", s)
		}
	}
	return u, nil
}

// loopback reports whether host is localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// servablePath reports whether u's path is empty, "/", or segments of
// unreserved characters (RFC 3986 §2.3) that a ServeMux pattern matches
// literally: no empty, "." or ".." segment, which a mux would clean away.
func servablePath(u *url.URL) bool {
	if u.RawPath != "" {
		return false // escapes
	}
	p := u.Path
	if p == "" || p == "/" {
		return true
	}
	segments := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if segments[len(segments)-1] == "" {
		segments = segments[:len(segments)-1] // a trailing slash
	}
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := range len(seg) {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return false
			}
		}
	}
	return true
}

// isControl reports whether r is a control character.
func isControl(r rune) bool { return r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) }
