package authz

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/dpop"
)

// Option configures an [Authorizer].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultRealm is the realm of the WWW-Authenticate challenges.
const DefaultRealm = "portcullis"

type config struct {
	realm            string
	resourceMetadata *string      // nil: challenges name no metadata
	fresh            func() error // nil: no revocations to be stale
	now              func() time.Time
	dpop             *dpop.Verifier // nil: DPoP is not accepted

	problems []string // invalid option values
}

func newConfig(opts []Option) *config {
	c := &config{realm: DefaultRealm, now: time.Now}
	for _, o := range opts {
		if o == nil {
			c.invalid("nil Option")
			continue
		}
		o.apply(c)
	}
	return c
}

// invalid records an option given an invalid value.
func (c *config) invalid(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// WithRealm sets the realm named in WWW-Authenticate challenges (RFC 6750
// §3). The default is [DefaultRealm].
func WithRealm(realm string) Option {
	return optionFunc(func(c *config) { c.realm = realm })
}

// WithResourceMetadata names the URL of the protected resource metadata
// (RFC 9728) in every WWW-Authenticate challenge, as its resource_metadata
// parameter (§5.1):
//
//	Bearer realm="portcullis", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource", error="invalid_token", ...
//
// A client refused for its token finds there which authorization servers
// issue tokens for the resource and which scopes they grant. The URL must
// be absolute, http or https, with a host and without user information or
// fragment, and printable ASCII without spaces, quotes or backslashes, so
// that it fits in the quoted string unescaped; [New] reports any other. By
// default challenges name no metadata.
func WithResourceMetadata(url string) Option {
	return optionFunc(func(c *config) { c.resourceMetadata = &url })
}

// challenge returns the start of every WWW-Authenticate challenge:
// `Bearer realm="..."`, with the resource_metadata parameter when set.
func (c *config) challenge() (string, error) {
	if c.realm == "" || quotable(c.realm) != c.realm {
		return "", fmt.Errorf("authz: realm %q is empty or not printable ASCII without quotes", c.realm)
	}
	challenge := `Bearer realm="` + c.realm + `"`
	if c.resourceMetadata == nil {
		return challenge, nil
	}
	if err := checkMetadataURL(*c.resourceMetadata); err != nil {
		return "", fmt.Errorf("authz: resource metadata URL %w", err)
	}
	return challenge + `, resource_metadata="` + *c.resourceMetadata + `"`, nil
}

// checkMetadataURL reports why s cannot be the resource_metadata
// parameter.
func checkMetadataURL(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if quotable(s) != s || strings.ContainsRune(s, ' ') {
		return fmt.Errorf("%q is not printable ASCII without spaces, quotes or backslashes", s)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q has user information", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q has a fragment", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has a port out of range", s)
		}
	}
	return nil
}
