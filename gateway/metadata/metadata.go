package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// WellKnownPath is the well-known URI of protected resource metadata (RFC
// 9728 §3), inserted between the host and the path of the resource
// identifier.
const WellKnownPath = "/.well-known/oauth-protected-resource"

// Resource is what the configuration says of the protected resource; the
// catalog says the rest.
type Resource struct {
	// Identifier is the resource identifier (RFC 9728 §1.2): the URL
	// clients call the gateway at, such as "https://api.example.com". It
	// must use https, except on a loopback host (http://127.0.0.1:8080),
	// and have no user information, query or fragment.
	Identifier string
	// AuthorizationServers are the issuer identifiers (RFC 8414) of the
	// authorization servers whose tokens the gateway accepts, such as
	// "https://auth.example.com": https URLs (http on a loopback host)
	// without query or fragment, see [CheckIssuer]. Empty leaves them out.
	AuthorizationServers []string
	// Name is the resource_name shown to people, such as "Example API".
	Name string
	// Documentation is the URL of the developers' documentation.
	Documentation string
	// PolicyURI is the URL of the policy on how clients may use the data.
	PolicyURI string
	// TOSURI is the URL of the terms of service.
	TOSURI string
}

// Document is protected resource metadata (RFC 9728 §2) as the gateway
// serves it. Members without a value are left out (§3.2).
type Document struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI      string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI         string   `json:"resource_tos_uri,omitempty"`
}

// Handler serves the protected resource metadata of one resource. Build
// it with [New]; it is immutable and safe for concurrent use.
type Handler struct {
	doc          Document
	body         []byte
	length       string // len(body)
	path         string // where the document is served on the listener
	url          string // the document's absolute URL
	maxAge       string // seconds
	cacheControl string
}

// New builds the metadata of the resource r whose permissions cat
// declares. It reports every invalid field of r and every invalid option
// at once.
func New(cat *catalog.Catalog, r Resource, opts ...Option) (*Handler, error) {
	if cat == nil {
		return nil, errors.New("metadata: nil catalog")
	}
	cfg, errs := newConfig(opts)
	u, err := parseIdentifier(r.Identifier)
	if err != nil {
		errs = append(errs, fmt.Errorf("resource identifier %w", err))
	}
	for i, as := range r.AuthorizationServers {
		if err := CheckIssuer(as); err != nil {
			errs = append(errs, fmt.Errorf("authorization server %w", err))
		} else if slices.Contains(r.AuthorizationServers[:i], as) {
			errs = append(errs, fmt.Errorf("authorization server %q is listed twice", as))
		}
	}
	for _, f := range []struct{ name, value string }{
		{"documentation", r.Documentation}, {"policy", r.PolicyURI}, {"terms of service", r.TOSURI},
	} {
		if f.value == "" {
			continue
		}
		if _, err := parseURL(f.value); err != nil {
			errs = append(errs, fmt.Errorf("%s URL %w", f.name, err))
		}
	}
	if strings.ContainsFunc(r.Name, isControl) {
		errs = append(errs, fmt.Errorf("resource name %q has control characters", r.Name))
	}
	if len(errs) > 0 {
		for i, err := range errs {
			errs[i] = fmt.Errorf("metadata: %w", err)
		}
		return nil, errors.Join(errs...)
	}

	doc := Document{
		Resource:               r.Identifier,
		AuthorizationServers:   slices.Clone(r.AuthorizationServers),
		ScopesSupported:        Scopes(cat),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           r.Name,
		ResourceDocumentation:  r.Documentation,
		ResourcePolicyURI:      r.PolicyURI,
		ResourceTOSURI:         r.TOSURI,
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	body = append(body, '\n')
	maxAge := strconv.FormatInt(int64(cfg.maxAge/time.Second), 10)
	path := WellKnownPath
	if u.Path != "/" {
		path += u.Path // §3.1: a lone "/" after the host is dropped
	}
	return &Handler{
		doc:          doc,
		body:         body,
		length:       strconv.Itoa(len(body)),
		path:         path,
		url:          u.Scheme + "://" + u.Host + path,
		maxAge:       maxAge,
		cacheControl: "public, max-age=" + maxAge,
	}, nil
}

// Document returns the document served. Its slices are the caller's.
func (h *Handler) Document() Document {
	d := h.doc
	d.AuthorizationServers = slices.Clone(d.AuthorizationServers)
	d.ScopesSupported = slices.Clone(d.ScopesSupported)
	d.BearerMethodsSupported = slices.Clone(d.BearerMethodsSupported)
	return d
}

// Path returns the path the document is served at, to mount the handler
// on: [WellKnownPath] followed by the identifier's path, if any.
func (h *Handler) Path() string { return h.path }

// URL returns the document's absolute URL, to name in WWW-Authenticate
// challenges (see authz.WithResourceMetadata), such as
// "https://api.example.com/.well-known/oauth-protected-resource".
func (h *Handler) URL() string { return h.url }

// Scopes returns the scope values that request access to the methods of
// cat: the reference of every permission, such as "LIC.READ_ORDERS", by
// domain name and then in declaration order.
func Scopes(cat *catalog.Catalog) []string {
	var scopes []string
	for _, d := range cat.Domains() {
		for _, p := range d.Permissions {
			scopes = append(scopes, p.String())
		}
	}
	return scopes
}
