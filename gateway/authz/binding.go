package authz

import (
	"context"
	"crypto/subtle"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/gateway/token"
)

var (
	errNoCertificate    = &token.Error{Kind: token.ErrUnbound, Reason: "token is bound to a client certificate, and the call has none"}
	errOtherCertificate = &token.Error{Kind: token.ErrUnbound, Reason: "token is bound to another client certificate"}
	errNoProof          = &token.Error{Kind: token.ErrUnbound, Reason: "token is bound to a DPoP key, and the call has no DPoP proof"}
	errBearer           = &token.Error{Kind: token.ErrUnbound, Reason: "the method needs a sender-constrained token (bound to a client certificate or a DPoP key)"}
)

// binding checks that the caller holds what its token is bound to (RFC
// 7800 cnf): the client certificate of the call (RFC 8705) or the key of
// its DPoP proof (RFC 9449); and that a method declared
// sender_constrained gets a bound token. A binding the call cannot prove
// is a refusal: a bound token is useless to whoever copied it.
//
// proven says that the call's DPoP proof was verified against the
// token's cnf.jkt (see [Authorizer.proof]).
func binding(ctx context.Context, m *catalog.Method, p *token.Principal, proven bool) error {
	c := p.Confirmation
	if c.CertificateThumbprint != "" {
		id, ok := clientcert.FromContext(ctx)
		if !ok {
			return errNoCertificate
		}
		if subtle.ConstantTimeCompare([]byte(id.Thumbprint), []byte(c.CertificateThumbprint)) != 1 {
			return errOtherCertificate
		}
	}
	if c.KeyThumbprint != "" && !proven {
		return errNoProof
	}
	if m.SenderConstrained && !c.Bound() {
		return errBearer
	}
	return nil
}
