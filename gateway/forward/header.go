package forward

import (
	"net/http"
	"strings"
)

// ReservedHeaderPrefix starts the names of request headers that only the
// gateway sets, such as Portcullis-Client-Id: the forwarding handlers drop
// every inbound header with this prefix (in any case, with '_' or '-'), so
// a backend can trust them. Set them with [WithRequestHeaders].
const ReservedHeaderPrefix = "Portcullis-"

// The headers that tell a backend who is calling, set by the gateway from
// the caller's verified token. Clients cannot forge them: they start with
// [ReservedHeaderPrefix].
const (
	ClientIDHeader = ReservedHeaderPrefix + "Client-Id"
	TierHeader     = ReservedHeaderPrefix + "Tier"
)

// hopByHop are the hop-by-hop headers (RFC 9110 §7.6.1), which concern
// one connection and are never relayed, in either direction.
var hopByHop = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// droppedHeaders are request headers never forwarded: hop-by-hop headers,
// and the headers of the inbound protocol, which the outbound client sets
// itself for the protocol it speaks.
var droppedHeaders = headerSet(hopByHop[:], []string{
	"Host", "Content-Type", "Content-Length", "Content-Encoding", "Accept-Encoding",
	"X-Grpc-Web", "X-User-Agent", "Proxy-Authorization",
})

// headerSet returns the set of the canonical header names in the lists.
func headerSet(lists ...[]string) map[string]struct{} {
	set := make(map[string]struct{})
	for _, list := range lists {
		for _, name := range list {
			set[name] = struct{}{}
		}
	}
	return set
}

// droppedPrefixes start the names of request headers never forwarded: the
// Connect and gRPC protocol headers (timeouts, compression, protocol
// version), proxy headers and the reserved prefix.
var droppedPrefixes = [...]string{"connect-", "grpc-", "proxy-", strings.ToLower(ReservedHeaderPrefix)}

// headerFilter copies the request headers that may be forwarded.
type headerFilter struct {
	sensitive map[string]struct{}
}

func newHeaderFilter(sensitive []string) *headerFilter {
	f := &headerFilter{sensitive: make(map[string]struct{}, len(sensitive))}
	for _, name := range sensitive {
		f.sensitive[http.CanonicalHeaderKey(name)] = struct{}{}
	}
	return f
}

// copy adds to dst the headers of src that may be forwarded. Values are
// shared, not copied: neither side changes them.
func (f *headerFilter) copy(dst, src http.Header) {
	for key, values := range src {
		if f.drop(key) {
			continue
		}
		dst[key] = values
	}
	// Headers that the Connection header names are hop-by-hop too.
	for _, line := range src["Connection"] {
		for name := range strings.SplitSeq(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(dst, http.CanonicalHeaderKey(name))
			}
		}
	}
}

func (f *headerFilter) drop(key string) bool {
	if _, ok := droppedHeaders[key]; ok {
		return true
	}
	if _, ok := f.sensitive[key]; ok {
		return true
	}
	for _, prefix := range droppedPrefixes {
		if hasHeaderPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// hasHeaderPrefix reports whether key starts with the lower-case prefix,
// ignoring case and treating '_' as '-' (some servers read
// Portcullis_Client_Id as Portcullis-Client-Id).
func hasHeaderPrefix(key, prefix string) bool {
	if len(key) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := key[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// responseDropped are response headers and trailers never relayed:
// hop-by-hop headers of an HTTP/1.1 backend, and protocol headers that the
// inbound side's protocol sets itself.
var responseDropped = headerSet(hopByHop[:], []string{
	"Content-Type", "Content-Length", "Content-Encoding", "Accept-Encoding", "Date",
})

// scrubResponse removes hop-by-hop headers from a backend's response
// headers; connect removes its protocol headers itself when a unary
// handler returns them.
func scrubResponse(h http.Header) {
	for _, key := range hopByHop {
		delete(h, key)
	}
}

// dropCORS removes a backend's CORS response headers: CORS is the
// gateway's, which sets its own, and a second Access-Control-Allow-Origin
// makes browsers refuse the answer.
func dropCORS(h http.Header) {
	for key := range h {
		if hasHeaderPrefix(key, "access-control-") {
			delete(h, key)
		}
	}
}

// copyResponseHeaders adds the backend's headers or trailers in src to
// dst, leaving out hop-by-hop and protocol headers. Streams need this:
// connect writes what a streaming handler puts in its response headers and
// trailers as they are.
func copyResponseHeaders(dst, src http.Header) {
	for key, values := range src {
		if len(values) == 0 {
			continue
		}
		if _, drop := responseDropped[key]; drop || hasHeaderPrefix(key, "grpc-") || hasHeaderPrefix(key, "connect-") || hasHeaderPrefix(key, "access-control-") {
			continue
		}
		dst[key] = append(dst[key], values...)
	}
}

// validHeaderName reports whether name is a header field name: a non-empty
// RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
