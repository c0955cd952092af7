package cors

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// defaultPorts are the ports browsers leave out of an origin.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// normalizeOrigin checks an allowed origin of a policy and returns it in
// lower case, as browsers send it: scheme://host[:port], the host a DNS
// name, an IPv4 address or a bracketed IPv6 address; or a pattern whose
// host starts with one "*." followed by a DNS name of at least two labels
// ("https://*.example.com" matches https://a.example.com and
// https://a.b.example.com, never https://example.com).
func normalizeOrigin(origin string) (string, error) {
	s := strings.ToLower(origin)
	if s == "null" {
		return "", errors.New(`the "null" origin (sandboxed documents, file: URLs) cannot be allowed`)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return "", errors.New("an origin is scheme://host[:port], such as https://app.example.com")
	}
	if strings.ContainsAny(rest, "/?#@\\ ") {
		return "", errors.New("an origin is scheme://host[:port], without path, query, fragment or user")
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return "", err
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		if defaultPorts[scheme] == port {
			return "", fmt.Errorf("browsers leave the default port out: write %s://%s", scheme, host)
		}
	}
	if pattern, ok := strings.CutPrefix(host, "*."); ok {
		if strings.Contains(pattern, "*") {
			return "", errors.New(`a pattern has one wildcard, a leading "*." in the host`)
		}
		if !validDNSName(pattern) || strings.Count(pattern, ".") < 1 {
			return "", errors.New(`a pattern's "*." is followed by a DNS name of at least two labels, such as *.example.com`)
		}
		return s, nil
	}
	if strings.Contains(s, "*") {
		return "", errors.New(`a pattern has one wildcard, a leading "*." in the host, such as https://*.example.com`)
	}
	if strings.HasPrefix(host, "[") {
		return s, nil // checked by splitHostPort
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return s, nil
	}
	if !validDNSName(host) {
		return "", fmt.Errorf("host %q is not a DNS name or an IP address (write internationalized names in punycode, xn--)", host)
	}
	return s, nil
}

// splitHostPort splits host[:port], where host may be a bracketed IPv6
// address.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errors.New("unclosed [ in IPv6 host")
		}
		if addr, err := netip.ParseAddr(s[1:end]); err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", fmt.Errorf("host %q is not an IPv6 address", s[:end+1])
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		port, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", "", fmt.Errorf("unexpected %q after the host", rest)
		}
		return host, port, nil
	}
	host, port, hasPort := strings.Cut(s, ":")
	if host == "" {
		return "", "", errors.New("the origin has no host")
	}
	if hasPort && port == "" {
		return "", "", errors.New("empty port")
	}
	return host, port, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validDNSName reports whether s is a lower-case ASCII DNS name: labels of
// 1 to 63 letters, digits and inner hyphens.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
