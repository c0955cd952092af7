package gateway

import (
	"net/http"
	"slices"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/metadata"
)

// resourceMetadata is the gateway's protected resource metadata (RFC
// 9728): the document the main listener serves, and its URL, which every
// WWW-Authenticate challenge names. A nil one does neither.
type resourceMetadata struct {
	handler *metadata.Handler
}

// newResourceMetadata builds the metadata of res from the catalog. When res
// lists no authorization servers (nil, not empty), they are the configured
// issuers whose identifiers are URLs: an issuer named otherwise, such as
// the iss of a shared secret, is no server a client can ask for a token.
//
// With no resource identifier there is no metadata: the document is not
// served and challenges carry no resource_metadata. The gateway does not
// guess the identifier from a request's Host: behind a load balancer it
// cannot tell the name its clients use, and a client checks the document's
// resource against the URL it called (RFC 9728 §3.3).
func (g *generation) newResourceMetadata(res metadata.Resource) (*resourceMetadata, error) {
	if res.Identifier == "" {
		return nil, nil
	}
	if res.AuthorizationServers == nil {
		for _, is := range g.cfg.Issuers {
			if metadata.CheckIssuer(is.Issuer) == nil && !slices.Contains(res.AuthorizationServers, is.Issuer) {
				res.AuthorizationServers = append(res.AuthorizationServers, is.Issuer)
			}
		}
	}
	h, err := metadata.New(g.catalog, res)
	if err != nil {
		return nil, err
	}
	return &resourceMetadata{handler: h}, nil
}

// authzOptions returns the authorizer's options that name the metadata in
// challenges.
func (m *resourceMetadata) authzOptions() []authz.Option {
	if m == nil {
		return nil
	}
	return []authz.Option{authz.WithResourceMetadata(m.handler.URL())}
}

// mount serves the document on mux, at the well-known path of the
// resource identifier.
func (m *resourceMetadata) mount(mux *http.ServeMux) {
	if m != nil {
		mux.Handle(m.handler.Pattern(), m.handler)
	}
}
