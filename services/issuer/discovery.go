package issuer

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// metadata is the authorization server metadata (RFC 8414 §2), also served
// as OpenID Connect discovery so that verifiers that know only that path
// find the JWKS. The issuer is no OpenID provider: it issues no ID tokens.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// RFC 7009 §2, RFC 8414 §2.
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	// RFC 7662 §4, RFC 8414 §2.
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	// The feed of revocations that gateways follow (revocation.Feed).
	RevocationFeedEndpoint string `json:"revocation_feed_endpoint"`
	// RFC 8705 §3.3, with [WithMutualTLS].
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// The algorithms of the DPoP proofs accepted (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

func (s *Server) buildMetadata() ([]byte, error) {
	m := metadata{
		Issuer:                                    s.issuer,
		TokenEndpoint:                             s.TokenURL(),
		JWKSURI:                                   s.JWKSURL(),
		ScopesSupported:                           []string{},
		ResponseTypesSupported:                    []string{}, // no authorization endpoint
		GrantTypesSupported:                       []string{grantClientCredentials},
		TokenEndpointAuthMethodsSupported:         []string{"client_secret_basic", "client_secret_post"},
		RevocationEndpoint:                        s.RevocationURL(),
		RevocationEndpointAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post"},
		RevocationFeedEndpoint:                    s.RevocationFeedURL(),
		IntrospectionEndpoint:                     s.IntrospectionURL(),
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		DPoPSigningAlgValuesSupported:             s.dpopAlgorithms(),
	}
	if s.cfg.mtls != nil {
		// Every endpoint that authenticates clients takes certificates;
		// tls_client_auth needs a client CA to verify them.
		methods := []string{AuthSelfSignedTLSClient}
		if s.cfg.mtls.roots != nil {
			methods = []string{AuthTLSClient, AuthSelfSignedTLSClient}
		}
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, methods...)
		m.RevocationEndpointAuthMethodsSupported = append(m.RevocationEndpointAuthMethodsSupported, methods...)
		m.IntrospectionEndpointAuthMethodsSupported = append(m.IntrospectionEndpointAuthMethodsSupported, methods...)
		m.TLSClientCertificateBoundAccessTokens = true
	}
	if s.exchange != nil {
		m.GrantTypesSupported = append(m.GrantTypesSupported, grantTokenExchange)
	}
	for _, d := range s.cat.Domains() {
		for _, p := range d.Permissions {
			m.ScopesSupported = append(m.ScopesSupported, p.String())
		}
	}
	return json.MarshalIndent(m, "", "  ")
}

// routes returns the issuer's endpoints, and the path of the issuer URL
// they are served under.
func (s *Server) routes() (*http.ServeMux, string) {
	u, _ := url.Parse(s.issuer) // checked by New
	path := u.EscapedPath()
	mux := http.NewServeMux()
	mux.HandleFunc(path+TokenPath, s.serveToken) // any method: non-POST gets an OAuth error
	mux.HandleFunc(path+RevocationPath, s.serveRevoke)
	mux.HandleFunc(path+IntrospectionPath, s.serveIntrospect)
	mux.Handle(path+RevocationFeedPath, s.rev.feed)
	mux.HandleFunc("GET "+path+JWKSPath, s.serveJWKS)
	mux.HandleFunc("GET "+MetadataPath+path, s.serveMetadata)
	mux.HandleFunc("GET "+path+OpenIDConfigurationPath, s.serveMetadata)
	return mux, path
}

// maxAge is the Cache-Control of the public documents.
func (s *Server) cacheControl() string {
	return "public, max-age=" + strconv.FormatInt(int64(s.cfg.jwksMaxAge.Seconds()), 10)
}

func (s *Server) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", s.cacheControl())
	w.Write(s.metadata)
}

// serveJWKS serves the published keys: the active one, pending ones, and
// retired ones until the tokens they signed have expired. Max-age is short
// so that rotations propagate; the ETag lets caches revalidate cheaply.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	v, err := s.view()
	if err != nil {
		s.logger().Error("issuer: JWKS", "error", err)
		http.Error(w, "no keys", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", s.cacheControl())
	h.Set("ETag", v.etag)
	if etagMatches(r.Header.Get("If-None-Match"), v.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/jwk-set+json")
	w.Write(v.jwks)
}

// etagMatches applies If-None-Match (RFC 9110 §13.1.2): a weak comparison
// against a list of entity tags, or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == etag {
			return true
		}
	}
	return false
}
