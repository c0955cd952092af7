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
}

// mint signs an access token for c: a JWS in compact serialization whose
// protected header, {"alg", "kid", "typ": "at+jwt"}, was encoded once when
// the key was loaded.
func (s *Server) mint(k *signingKey, c *client, masks map[string]uint64, scope string, now time.Time, lifetime time.Duration) (string, error) {
	if masks == nil {
		masks = map[string]uint64{}
	}
	var jti [16]byte
	rand.Read(jti[:]) // never fails
	iat := now.Unix()
	payload, err := json.Marshal(accessClaims{
		Issuer:    s.issuer,
		Subject:   c.id,
		Audience:  s.audience,
		Expiry:    iat + int64(lifetime/time.Second),
		IssuedAt:  iat,
		NotBefore: iat,
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		ClientID:  c.id,
		Scope:     scope,
		Perms:     masks,
		Tier:      c.tier,
	})
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
