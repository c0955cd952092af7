package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
)

const (
	headerForwardedFor = "X-Forwarded-For"
	// maxForwardedHops bounds the walk through X-Forwarded-For.
	maxForwardedHops = 32
	unknownAddr      = "unknown"
)

// clientAddr returns the address that identifies the client of a public
// call: the direct peer's, unless the peer is a trusted proxy; then the
// rightmost address of X-Forwarded-For that is not a trusted proxy's. The
// walk stops at an entry that is not an address, keeping the last trusted
// hop: a malformed header never helps a client pick its key.
func clientAddr(peer string, header http.Header, trusted []netip.Prefix) (netip.Addr, bool) {
	addr, ok := parseAddr(peer)
	if !ok {
		return netip.Addr{}, false
	}
	if !isTrusted(addr, trusted) {
		return addr, true
	}
	hops := 0
	lines := header[headerForwardedFor]
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for line != "" {
			entry := line
			if comma := strings.LastIndexByte(line, ','); comma >= 0 {
				entry, line = line[comma+1:], line[:comma]
			} else {
				line = ""
			}
			next, ok := parseAddr(strings.TrimSpace(entry))
			if !ok {
				return addr, true
			}
			addr = next
			if !isTrusted(addr, trusted) {
				return addr, true
			}
			if hops++; hops == maxForwardedHops {
				return addr, true
			}
		}
	}
	return addr, true
}

// parseAddr parses an address with or without a port, as found in
// RemoteAddr and X-Forwarded-For. It tells the two forms apart by their
// syntax, so that a well-formed address is parsed once, without an error
// to allocate: a port follows an IPv4 address's only colon, or an IPv6
// address in brackets.
func parseAddr(s string) (netip.Addr, bool) {
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		addrPort, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return addrPort.Addr().WithZone("").Unmap(), true
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.WithZone("").Unmap(), true
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// addrKey formats the client part of a public call's key: the address, or
// for IPv6 its network of the configured prefix length.
func addrKey(addr netip.Addr, ok bool, ipv6Bits int) string {
	if !ok {
		return unknownAddr
	}
	if addr.Is6() && ipv6Bits < 128 {
		p, err := addr.Prefix(ipv6Bits)
		if err == nil {
			return p.String()
		}
	}
	return addr.String()
}
