package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// verifyKey is one key of an issuer, ready to verify.
type verifyKey struct {
	kid  string
	algs algSet           // what it may verify: its type, size and alg parameter
	pub  crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or hmacKey
	id   string           // identity across fetches: thumbprint, kid and algs
	macs [3]sync.Pool     // keyed HMACs for HS256, HS384, HS512, for hmacKey
}

// keyIndex is an immutable snapshot of an issuer's usable keys.
type keyIndex struct {
	byKid map[string][]*verifyKey
	all   []*verifyKey
}

// lookup returns the keys named kid. It does not allocate.
func (ix *keyIndex) lookup(kid []byte) []*verifyKey { return ix.byKid[string(kid)] }

// errNoUsableKey: a key set from which no key can verify tokens.
var errNoUsableKey = errors.New("key set has no key usable to verify signatures")

// buildIndex turns a key set into an index, reusing the keys of old that
// are still there (so that their cached verifications, which the cache
// checks by key identity, live on). It skips keys
// that cannot verify: encryption keys, unsupported types, weak keys, and
// shared secrets unless allowSecrets.
func buildIndex(set jwk.Set, old *keyIndex, allowSecrets bool) (*keyIndex, []error) {
	ix := &keyIndex{byKid: make(map[string][]*verifyKey)}
	var skipped []error
	reuse := make(map[string]*verifyKey)
	if old != nil {
		for _, k := range old.all {
			reuse[k.id] = k
		}
	}
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			continue
		}
		k, err := newVerifyKey(key, allowSecrets)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %q: %w", key.KeyID(), err))
			continue
		}
		if prev, ok := reuse[k.id]; ok {
			k = prev
		}
		if slices.Contains(ix.all, k) {
			continue // listed twice
		}
		ix.all = append(ix.all, k)
		ix.byKid[k.kid] = append(ix.byKid[k.kid], k)
	}
	return ix, skipped
}

func newVerifyKey(key jwk.Key, allowSecrets bool) (*verifyKey, error) {
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("use is %q, not sig", use)
	}
	if ops := key.KeyOps(); len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, errors.New("key_ops does not allow verify")
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return nil, err
	}
	var pub crypto.PublicKey
	switch k := raw.(type) {
	case *rsa.PublicKey:
		pub = k
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PublicKey:
		pub = k
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PublicKey:
		pub = k
	case ed25519.PrivateKey:
		pub, _ = k.Public().(ed25519.PublicKey)
	case []byte:
		if !allowSecrets {
			return nil, errors.New("shared secrets (kty oct) are only accepted from a local key set")
		}
		pub = hmacKey(k)
	default:
		return nil, fmt.Errorf("key type %s cannot verify signatures", key.KeyType())
	}
	var declared string
	if a := key.Algorithm(); a != nil && a.String() != "" {
		declared = a.String()
	}
	algs, err := algsFor(pub, declared)
	if err != nil {
		return nil, err
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return newKey(key.KeyID(), pub, algs, base64.RawURLEncoding.EncodeToString(thumb)), nil
}

func newKey(kid string, pub crypto.PublicKey, algs algSet, thumbprint string) *verifyKey {
	return &verifyKey{
		kid:  kid,
		algs: algs,
		pub:  pub,
		id:   fmt.Sprintf("%s|%s|%x", thumbprint, kid, uint32(algs)),
	}
}

// secretIndex is the index of an issuer with a shared secret.
func secretIndex(secret []byte, kid string) (*keyIndex, error) {
	pub := hmacKey(slices.Clone(secret))
	algs, err := algsFor(pub, "")
	if err != nil {
		return nil, err
	}
	k := newKey(kid, pub, algs, "secret")
	return &keyIndex{byKid: map[string][]*verifyKey{kid: {k}}, all: []*verifyKey{k}}, nil
}

// checkLocalSecrets refuses the shared secrets of a local key set that are
// too short for an HMAC algorithm they would verify: the one a key
// declares, or else those the issuer allows (RFC 7518 §3.2). Such a key
// would verify no token, and the issuer's tokens would be refused one by
// one instead of the configuration at once.
func checkLocalSecrets(set jwk.Set, allowed algSet) error {
	var problems []error
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			continue
		}
		var raw any
		if key.Raw(&raw) != nil {
			continue
		}
		secret, ok := raw.([]byte)
		if !ok {
			continue
		}
		want := allowed & hmacAlgs
		if a := key.Algorithm(); a != nil && a.String() != "" {
			want = setOf(parseAlg([]byte(a.String()))) & hmacAlgs
		}
		if err := checkSecretLength(len(secret), want); err != nil {
			problems = append(problems, fmt.Errorf("key %q: %w", key.KeyID(), err))
		}
	}
	return errors.Join(problems...)
}
