package config

import "github.com/portcullis/portcullis/gateway/metadata"

// Resource names the gateway as an OAuth protected resource (RFC 9728):
// with a URL, the gateway publishes its metadata and names it in every
// WWW-Authenticate challenge.
type Resource struct {
	// URL is the resource identifier: the https URL clients call the
	// gateway by (http on a loopback host, for development).
	URL string `json:"url"`
	// AuthorizationServers are the issuers a client may get tokens from.
	// Unset: the configured issuers whose identifiers are URLs; [] for none.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// Name is a human-readable name of the resource.
	Name string `json:"name,omitempty"`
	// Documentation is a URL of documentation for developers.
	Documentation string `json:"documentation,omitempty"`
	// PolicyURI is a URL of the resource's data-use policy.
	PolicyURI string `json:"policy_uri,omitempty"`
	// TOSURI is a URL of the resource's terms of service.
	TOSURI string `json:"tos_uri,omitempty"`
}

// Metadata returns the metadata package's view of r; the zero value, which
// publishes nothing, when r is nil.
func (r *Resource) Metadata() metadata.Resource {
	if r == nil {
		return metadata.Resource{}
	}
	return metadata.Resource{
		Identifier:           r.URL,
		AuthorizationServers: r.AuthorizationServers,
		Name:                 r.Name,
		Documentation:        r.Documentation,
		PolicyURI:            r.PolicyURI,
		TOSURI:               r.TOSURI,
	}
}

func (r *Resource) validate(v *validator) {
	if r == nil {
		return
	}
	if r.URL == "" {
		v.add("resource.url", "is required: the URL clients call the gateway by")
	}
}
