package issuer

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/dpop"
)

// codeInvalidDPoPProof and codeUseDPoPNonce answer a token request whose
// DPoP proof is refused (RFC 9449 §5, §8).
const (
	codeInvalidDPoPProof = "invalid_dpop_proof"
	codeUseDPoPNonce     = "use_dpop_nonce"
)

// WithDPoP sets the verifier of the DPoP proofs of token requests (RFC
// 9449 §5): to share its replay store (dpop.NewRedis) between replicas
// of the issuer, or to require nonces. By default proofs are checked with
// dpop's defaults and remembered in memory.
func WithDPoP(v *dpop.Verifier) Option {
	return optionFunc(func(c *config) {
		if v != nil {
			c.dpop = v
		}
	})
}

// defaultDPoP is the verifier of token requests without [WithDPoP].
func defaultDPoP(now func() time.Time) *dpop.Verifier {
	v, err := dpop.New(dpop.WithClock(now))
	if err != nil {
		panic("issuer: default DPoP verifier: " + err.Error()) // fixed options: never
	}
	return v
}

// dpopProof checks the DPoP proof of a token request, if it has one, and
// returns the thumbprint of its key, to bind the token to; "" without a
// proof. The proof must be made for POST to the token endpoint, carry no
// ath (no token comes with the request), and not have been used before.
func (s *Server) dpopProof(r *http.Request) (string, *oauthError) {
	if _, ok := r.Header["Dpop"]; !ok {
		return "", nil
	}
	p, err := s.cfg.dpop.Verify(r.Context(), r.Header, dpop.Request{Method: http.MethodPost, URL: s.TokenURL()})
	if err != nil {
		var de *dpop.Error
		if !errors.As(err, &de) {
			return "", &oauthError{status: http.StatusInternalServerError, code: "server_error", description: "could not check the DPoP proof"}
		}
		if errors.Is(err, dpop.ErrUnavailable) {
			return "", &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: de.Reason}
		}
		return "", &oauthError{status: http.StatusBadRequest, code: de.Code(), description: de.Reason, dpopNonce: de.Nonce}
	}
	return p.KeyThumbprint, nil
}

// dpopAlgorithms returns the algorithms of dpop_signing_alg_values_supported.
func (s *Server) dpopAlgorithms() []string {
	return strings.Fields(s.cfg.dpop.Algorithms())
}

// tokenType is the token_type of a response (RFC 9449 §5): DPoP for a
// bound token.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}
