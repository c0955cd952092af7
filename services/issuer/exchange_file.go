package issuer

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/portcullis/portcullis/gateway/token"
)

// exchangeFile is the YAML form of [Exchange], read by [ReadExchange].
type exchangeFile struct {
	Public    bool               `json:"public"`
	Resources []string           `json:"resources"`
	Issuers   []exchangeFileItem `json:"issuers"`
}

type exchangeFileItem struct {
	Issuer     string            `json:"issuer"`
	Audiences  []string          `json:"audiences"`
	Discovery  bool              `json:"discovery"`
	JWKSURL    string            `json:"jwks_url"`
	JWKSFile   string            `json:"jwks_file"`
	Type       string            `json:"type"`
	Algorithms []string          `json:"algorithms"`
	Subjects   map[string]string `json:"subjects"`
	Claims     []struct {
		Claim  string   `json:"claim"`
		Value  string   `json:"value"`
		Grants []string `json:"grants"`
	} `json:"claims"`
}

// ReadExchange reads the token exchange configuration of [WithExchange]
// from a YAML file, and [New] checks what it holds:
//
//	public: false                      # callers without client authentication may exchange
//	resources: [https://reports.example]
//	issuers:
//	- issuer: https://idp.example      # the iss claim; with discovery, where its metadata is
//	  audiences: [portcullis]          # aud values accepted in subject tokens
//	  discovery: true                  # or jwks_url: https://idp.example/keys
//	  type: any                        # typ header required; default at+jwt
//	  algorithms: [RS256]
//	  subjects:                        # external sub or client_id → registry client
//	    svc-billing: billing
//	  claims:                          # claim value → grants
//	  - {claim: groups, value: readers, grants: [LIC.READ_REQUIREMENTS]}
//
// It is read strictly: unknown fields and duplicate keys are errors.
func ReadExchange(path string) (Exchange, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Exchange{}, err
	}
	var f exchangeFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return Exchange{}, fmt.Errorf("exchange %s: %w", path, err)
	}
	x := Exchange{Public: f.Public, Resources: f.Resources}
	for _, it := range f.Issuers {
		is := ExternalIssuer{
			Issuer: token.Issuer{
				Issuer: it.Issuer, Audiences: it.Audiences, Discover: it.Discovery, JWKSURL: it.JWKSURL,
				JWKSFile: it.JWKSFile, Type: it.Type, Algorithms: it.Algorithms,
			},
			Subjects: it.Subjects,
		}
		for _, c := range it.Claims {
			is.Claims = append(is.Claims, ClaimRule{Claim: c.Claim, Value: c.Value, Grants: c.Grants})
		}
		x.Issuers = append(x.Issuers, is)
	}
	return x, nil
}
