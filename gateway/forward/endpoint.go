package forward

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// endpoint is one replica of a backend: its address, its own HTTP/2
// connections, what its calls and probes showed of it, and its share of
// the balancing state. Counters are atomic; the ejection fields are
// guarded by the Backend's mu.
type endpoint struct {
	url       string // scheme://host[:port][/prefix], for operators
	host      string // what is dialled: host:port (an address, for DNS endpoints)
	authority string // the Host header and TLS server name ("" = host)
	prefix    string // path prefix, without trailing slash
	pool      *connPool
	health    health

	inflight    atomic.Int64  // calls under way, for least_request
	requests    atomic.Uint64 // attempts sent
	failures    atomic.Uint64 // attempts that found it unreachable
	ejections   atomic.Uint64
	consecutive atomic.Uint32 // failures since the last answer
	probeDown   atomic.Bool   // the last probe failed
	ejected     atomic.Bool   // out of rotation until readmitted

	// Guarded by Backend.mu.
	ejectCount int       // ejections in a row, which lengthen the next
	readmitted time.Time // when the last ejection ended
	timer      *time.Timer
	removed    bool

	stopProbe context.CancelFunc // nil without a probe
	probeDone chan struct{}
}

// usable reports whether the balancer may choose the endpoint.
func (e *endpoint) usable() bool { return !e.ejected.Load() && !e.probeDown.Load() }

// target points req at the endpoint; path is the procedure's path.
func (e *endpoint) target(req *http.Request, path string) {
	req.URL.Host = e.host
	req.Host = e.host
	if e.authority != "" {
		req.Host = e.authority
	}
	if e.prefix != "" {
		req.URL.Path = e.prefix + path
		req.URL.RawPath = ""
	}
}

// EndpointState is where an endpoint stands in its backend's rotation.
type EndpointState string

// The states of an endpoint.
const (
	// EndpointUp takes calls.
	EndpointUp EndpointState = "up"
	// EndpointEjected failed several calls in a row and takes none until
	// its ejection time is over.
	EndpointEjected EndpointState = "ejected"
	// EndpointDown failed its last health check and takes no calls until
	// one succeeds.
	EndpointDown EndpointState = "down"
)

// EndpointStatus is what [Backend.Endpoints] reports of one endpoint.
type EndpointStatus struct {
	// URL is the endpoint's address, for operators: never shown to clients.
	URL string
	// State is up, ejected or down.
	State EndpointState
	// InFlight is the number of calls under way on it.
	InFlight int64
	// Requests counts the calls (and retries) sent to it.
	Requests uint64
	// Failures counts the calls that found it unreachable.
	Failures uint64
	// Ejections counts the times it was taken out of rotation after
	// consecutive failures.
	Ejections uint64
	// Err is why it was last seen unreachable, or "" while it answers.
	Err string
}

func (e *endpoint) status() EndpointStatus {
	s := EndpointStatus{
		URL:       e.url,
		State:     EndpointUp,
		InFlight:  e.inflight.Load(),
		Requests:  e.requests.Load(),
		Failures:  e.failures.Load(),
		Ejections: e.ejections.Load(),
	}
	switch {
	case e.ejected.Load():
		s.State = EndpointEjected
	case e.probeDown.Load():
		s.State = EndpointDown
	}
	if e.health.down.Load() {
		e.health.mu.Lock()
		if e.health.err != nil {
			s.Err = e.health.err.Error()
		}
		e.health.mu.Unlock()
	}
	return s
}

// Endpoints returns the state and counters of each of the backend's
// endpoints, in the order they were added.
func (b *Backend) Endpoints() []EndpointStatus {
	set := b.set.Load()
	out := make([]EndpointStatus, len(set.all))
	for i, e := range set.all {
		out[i] = e.status()
	}
	return out
}

// parseEndpoint checks an endpoint URL as [NewBackend] does and splits it.
func parseEndpoint(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, errorf("backend URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errorf("backend URL %q: scheme must be http or https", target)
	case u.Host == "":
		return nil, errorf("backend URL %q: no host", target)
	case u.User != nil:
		return nil, errorf("backend URL must not carry user info")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errorf("backend URL %q: no query or fragment allowed", target)
	}
	return u, nil
}

// baseURL is the endpoint URL as the backend reports it.
func baseURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
}
