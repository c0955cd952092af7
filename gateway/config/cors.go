package config

import (
	"github.com/portcullis/portcullis/gateway/cors"
)

// CORS is a cross-origin policy (the Fetch standard's CORS protocol): which
// pages may call the gateway from a browser. The headers that Connect,
// gRPC-Web and the gateway use are always allowed and exposed.
type CORS struct {
	// AllowedOrigins are exact origins ("https://app.example.com",
	// "http://127.0.0.1:8084"), patterns with one leading wildcard label
	// ("https://*.example.com"), or "*" alone for any origin.
	AllowedOrigins []string `json:"allowed_origins"`
	// AllowCredentials lets pages send cookies and client certificates; not
	// with "*". Bearer tokens need no credentials mode.
	AllowCredentials bool `json:"allow_credentials,omitempty"`
	// MaxAge is how long a browser may cache a preflight's answer. Default
	// none (the browser's own, a few seconds).
	MaxAge Duration `json:"max_age,omitempty"`
	// AllowedHeaders are request headers pages may send beyond the
	// protocols' own.
	AllowedHeaders []string `json:"allowed_headers,omitempty"`
	// ExposedHeaders are response headers pages may read beyond the
	// protocols' and the gateway's own.
	ExposedHeaders []string `json:"exposed_headers,omitempty"`
}

// Policy returns the policy for the cors package.
func (c *CORS) Policy() cors.Policy {
	return cors.Policy{
		AllowedOrigins:   c.AllowedOrigins,
		AllowCredentials: c.AllowCredentials,
		MaxAge:           c.MaxAge.Std(),
		AllowedHeaders:   c.AllowedHeaders,
		ExposedHeaders:   c.ExposedHeaders,
	}
}

func (c *CORS) validate(v *validator, path string) {
	if c == nil {
		return
	}
	if len(c.AllowedOrigins) == 0 {
		v.add(path+".allowed_origins", "is empty: list the origins allowed, or leave cors out")
		return
	}
	if err := c.Policy().Validate(); err != nil {
		v.add(path, "%v", err)
	}
}

// REST configures the REST/JSON routes of google.api.http annotations.
type REST struct {
	// Enabled serves them. Default true: a method without annotations has
	// no REST route anyway.
	Enabled *bool `json:"enabled,omitempty"`
}

// IsEnabled reports whether REST routes are served.
func (r REST) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }
