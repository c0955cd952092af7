package issuer

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"
)

// accessClaims are the claims of an access token: those of RFC 9068 §2.2,
// and the permission masks and tier the gateway reads.
type accessClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	Expiry    int64             `json:"exp"`
	IssuedAt  int64             `json:"iat"`
	NotBefore int64             `json:"nbf"`
	ID        string            `json:"jti"`
	ClientID  string            `json:"client_id"`
	Scope     string            `json:"scope,omitempty"`
	Perms     map[string]uint64 `json:"perms"` // domain → mask
	Tier      string            `json:"tier,omitempty"`
	// Act names the actor of an exchanged token (RFC 8693 §4.1).
	Act *actor `json:"act,omitempty"`
	// Cnf binds the token to what its holder must prove it holds (RFC
	// 7800): a client certificate (RFC 8705 §3) or a DPoP key (RFC 9449
	// §6).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// actor is an act claim (RFC 8693 §4.1): the party acting for the
// subject, and the actor before it, if any.
type actor struct {
	Subject string `json:"sub"`
	Issuer  string `json:"iss,omitempty"`
	Act     *actor `json:"act,omitempty"`
}

// mint signs an access token for c: a JWS in compact serialization whose
// protected header, {"alg", "kid", "typ": "at+jwt"}, was encoded once when
// the key was loaded.
func (s *Server) mint(k *signingKey, c *client, masks map[string]uint64, scope string, cnf *confirmation, now time.Time, lifetime time.Duration) (string, error) {
	return s.sign(k, accessClaims{Subject: c.id, Audience: s.audience, ClientID: c.id, Scope: scope, Perms: masks, Tier: c.tier, Cnf: cnf}, now, lifetime)
}

// sign completes claims with the issuer, the times and a fresh jti, and
// signs them.
func (s *Server) sign(k *signingKey, claims accessClaims, now time.Time, lifetime time.Duration) (string, error) {
	if claims.Perms == nil {
		claims.Perms = map[string]uint64{}
	}
	var jti [16]byte
	rand.Read(jti[:]) // never fails
	iat := now.Unix()
	claims.Issuer = s.issuer
	claims.Expiry = iat + int64(lifetime/time.Second)
	claims.IssuedAt = iat
	claims.NotBefore = iat
	claims.ID = base64.RawURLEncoding.EncodeToString(jti[:])
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+b64.EncodedLen(len(payload))+b64.EncodedLen(512)+2)
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	sig, err := k.signer.Sign(buf, k.private)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig)
	return string(buf), nil
}
