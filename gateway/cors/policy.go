package cors

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Policy is what a route allows browsers to do from other origins. The
// zero Policy allows no origin: preflights are answered without allowing
// anything and responses carry no CORS header.
type Policy struct {
	// AllowedOrigins are the origins whose scripts may call: exact origins
	// (scheme://host[:port], such as "https://app.example.com" or
	// "http://localhost:5173"), patterns with one leading "*." in the host
	// ("https://*.example.com": any subdomain, at any depth, over https on
	// the default port), or "*" alone for any origin. Case does not matter.
	AllowedOrigins []string
	// AllowCredentials lets scripts send cookies and HTTP authentication
	// and read the response (Access-Control-Allow-Credentials: true). It
	// cannot go with the origin "*". A bearer token set by the script in
	// Authorization needs no credentials.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight's answer, in whole
	// seconds; 0 sends no Access-Control-Max-Age, and browsers then cache it
	// for 5 seconds. Browsers cap it (Chromium at 2 hours, Firefox at 24).
	MaxAge time.Duration
	// AllowedHeaders are request headers scripts may send on top of
	// [AllowedHeaders] (those of Connect, gRPC-Web and the gateway).
	AllowedHeaders []string
	// ExposedHeaders are response headers scripts may read on top of
	// [ExposedHeaders] (those of gRPC-Web and the gateway's refusals), such
	// as a backend's own headers or the Trailer-* headers of Connect unary
	// responses.
	ExposedHeaders []string
}

// Validate reports every problem of the policy at once.
func (p Policy) Validate() error {
	_, err := p.normalize()
	return err
}

// normalized is a policy checked and put in the form rs/cors takes.
type normalized struct {
	origins          []string // lower case; nil for any origin
	any              bool     // "*"
	allowCredentials bool
	maxAge           int // seconds, 0 for no header
	allowedHeaders   []string
	exposedHeaders   []string
}

func (p Policy) normalize() (normalized, error) {
	var errs []error
	n := normalized{allowCredentials: p.AllowCredentials}
	seen := make(map[string]bool, len(p.AllowedOrigins))
	for i, origin := range p.AllowedOrigins {
		if origin == "*" {
			if len(p.AllowedOrigins) > 1 {
				errs = append(errs, errors.New(`allowed_origins: "*" allows every origin and stands alone`))
			}
			if p.AllowCredentials {
				errs = append(errs, errors.New(`allowed_origins: "*" cannot go with allow_credentials: name the origins`))
			}
			n.any = true
			continue
		}
		o, err := normalizeOrigin(origin)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowed_origins[%d] %q: %w", i, origin, err))
			continue
		}
		if !seen[o] {
			seen[o] = true
			n.origins = append(n.origins, o)
		}
	}
	switch {
	case p.MaxAge < 0:
		errs = append(errs, fmt.Errorf("max_age %s is negative", p.MaxAge))
	case p.MaxAge%time.Second != 0:
		errs = append(errs, fmt.Errorf("max_age %s is not a whole number of seconds", p.MaxAge))
	default:
		n.maxAge = int(p.MaxAge / time.Second)
	}
	if err := checkHeaderNames("allowed_headers", p.AllowedHeaders); err != nil {
		errs = append(errs, err)
	}
	if err := checkHeaderNames("exposed_headers", p.ExposedHeaders); err != nil {
		errs = append(errs, err)
	}
	n.allowedHeaders = appendNew(AllowedHeaders(), p.AllowedHeaders...)
	n.exposedHeaders = appendNew(ExposedHeaders(), p.ExposedHeaders...)
	return n, errors.Join(errs...)
}

// checkHeaderNames refuses names that are not HTTP field names, "*" among
// them: a wildcard means nothing with credentials, and hides what a route
// reads or reveals.
func checkHeaderNames(field string, names []string) error {
	var errs []error
	for i, name := range names {
		if name == "*" {
			errs = append(errs, fmt.Errorf(`%s[%d]: name the headers instead of "*"`, field, i))
		} else if !httpguts.ValidHeaderFieldName(name) {
			errs = append(errs, fmt.Errorf("%s[%d] %q is not a header name", field, i, name))
		}
	}
	return errors.Join(errs...)
}
