package token

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Issuer is a trusted token issuer: what its tokens must say and where its
// keys come from. Set exactly one key source: JWKSURL, Discover, JWKSFile,
// JWKS or Secret.
type Issuer struct {
	// Issuer is the iss claim of its tokens, compared exactly. With
	// Discover, it is also the URL its metadata is found under.
	Issuer string
	// Audiences are the aud values accepted: a token must name at least one.
	Audiences []string

	// JWKSURL is the URL of the issuer's key set (RFC 7517 §5), fetched
	// before the first token and kept fresh in the background.
	JWKSURL string
	// Discover finds the key set URL in the issuer's metadata: the
	// jwks_uri of /.well-known/oauth-authorization-server (RFC 8414), or
	// else of /.well-known/openid-configuration (OpenID Connect Discovery).
	Discover bool
	// JWKSFile is a local file holding the key set, read by [NewVerifier]
	// and again whenever it changes (the verifier looks every second),
	// until the verifier closes. A new content that cannot be read, does
	// not parse or breaks the rules below is logged and the keys read last
	// keep serving; one that holds no usable key leaves the issuer with
	// none. Unlike a fetched one it may hold shared secrets
	// (kty oct), as long as the hash of the HMAC algorithm they declare,
	// or else of those in Algorithms. A fetched key set holding private
	// key material is refused.
	JWKSFile string
	// JWKS is the key set itself, as JSON, with the same rules as JWKSFile.
	JWKS []byte
	// Secret is a shared secret for HMAC-signed tokens (HS256 unless
	// Algorithms says otherwise), for deployments where the issuer and the
	// verifiers are one party. It must be at least as long as the hash of
	// each algorithm it verifies (RFC 7518 §3.2): 32, 48 and 64 bytes for
	// HS256, HS384 and HS512. Its tokens must name a key (any kid) unless
	// AllowMissingKid.
	Secret []byte

	// Algorithms is the allowlist of JWS algorithms (RFC 7518), such as
	// "RS256", "ES256" or "EdDSA". When empty: every RSA, ECDSA and EdDSA
	// algorithm for public keys, HS256 for a secret. A token's algorithm
	// must also be one its key can use; "none" never passes.
	Algorithms []string
	// Type is the typ header tokens must carry, compared without case and
	// with an optional "application/" prefix (RFC 7515 §4.1.9). When
	// empty, it is [TypeAccessToken], "at+jwt" (RFC 9068): an OpenID
	// Connect ID token, or any other JWT the issuer signs for the same
	// audience, does not pass as an access token (RFC 8725 §3.11).
	// [TypeAny] accepts tokens of any type or none: only for issuers that
	// mint nothing but access tokens and cannot type them.
	Type string
	// AllowMissingKid accepts tokens without a kid header when the issuer
	// has exactly one key for the token's algorithm, as single-key setups
	// such as a [Issuer.Secret] mint them. By default a token must name
	// its key: then adding a key to the key set never changes which key
	// verifies a token. A Secret is the issuer's only key, so the kid of
	// its tokens is not compared.
	AllowMissingKid bool

	// Permissions says where the issuer's tokens carry their permissions:
	// [PermissionsFromClaim] (the default, when empty), the permission
	// claim; or [PermissionsFromScopes], the OAuth scopes. A scope grants
	// the permission Scopes maps it to, or else the permission it names
	// (such as "LIC.READ_ORDERS"); any other scope is another API's and
	// grants nothing. The permission claim of such an issuer's tokens is
	// ignored. Reading scopes needs [WithPermissionLookup].
	Permissions string
	// Scopes maps the issuer's scope names to permission references,
	// DOMAIN.NAME, such as "orders:read" → "ORD.READ"; only with
	// [PermissionsFromScopes]. Every permission named must be known to the
	// [WithPermissionLookup] table.
	Scopes map[string]string
}

// Values of [Issuer.Type].
const (
	// TypeAccessToken is the type of JWT access tokens (RFC 9068 §2.1),
	// the default.
	TypeAccessToken = "at+jwt"
	// TypeAny turns the type check off: tokens of any type, or none, pass.
	TypeAny = "any"
)

// source names the key source of an issuer.
type source uint8

const (
	sourceURL source = iota + 1
	sourceDiscover
	sourceFile
	sourceInline
	sourceSecret
)

// issuer is a trusted issuer at run time.
type issuer struct {
	name      string
	audiences []string
	algs      algSet
	typ       string // lower case, without "application/"; "" for any
	source    source
	// allowMissingKid: a token without kid is verified by the issuer's
	// only key for its algorithm.
	allowMissingKid bool
	// scopes, when not nil, grants the permissions of the token's scopes
	// in place of the permission claim.
	scopes *scopeTable

	keys    atomic.Pointer[keyIndex]
	keyFile keyFile // for a key set file, what was read of it at start

	ready     chan struct{} // closed after the first successful fetch
	readyOnce sync.Once
	lastErr   atomic.Pointer[error]
	// nextRetry is when the first fetch is tried again, in unix
	// nanoseconds of the system clock, or 0.
	nextRetry atomic.Int64

	stateMu sync.Mutex
	state   keyState // of the last fetch, for the log

	mu        sync.Mutex
	jwksURL   string // known, or discovered
	inflight  *fetchCall
	lastFetch time.Time // of the last on-demand fetch
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func (is *issuer) markReady() {
	is.readyOnce.Do(func() { close(is.ready) })
}

func (is *issuer) isReady() bool {
	select {
	case <-is.ready:
		return true
	default:
		return false
	}
}

// newIssuer checks the configuration of one issuer.
func newIssuer(cfg Issuer, lookup PermissionLookup) (*issuer, error) {
	var problems []string
	if cfg.Issuer == "" {
		problems = append(problems, "Issuer is empty")
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		problems = append(problems, "Audiences is empty or holds an empty value")
	}
	is := &issuer{
		name:            cfg.Issuer,
		audiences:       slices.Clone(cfg.Audiences),
		ready:           make(chan struct{}),
		allowMissingKid: cfg.AllowMissingKid,
	}
	switch {
	case cfg.Type == "":
		is.typ = TypeAccessToken
	case strings.EqualFold(cfg.Type, TypeAny):
		is.typ = ""
	default:
		if is.typ = normalizeType(cfg.Type); is.typ == "" {
			problems = append(problems, fmt.Sprintf("Type %q names no type", cfg.Type))
		}
	}
	switch cfg.Permissions {
	case "", PermissionsFromClaim:
		if len(cfg.Scopes) > 0 {
			problems = append(problems, "Scopes needs Permissions "+PermissionsFromScopes)
		}
	case PermissionsFromScopes:
		var more []string
		is.scopes, more = newScopeTable(cfg, lookup)
		problems = append(problems, more...)
	default:
		problems = append(problems, fmt.Sprintf("Permissions %q is neither %q nor %q", cfg.Permissions, PermissionsFromClaim, PermissionsFromScopes))
	}
	var sources []string
	if cfg.JWKSURL != "" {
		sources = append(sources, "JWKSURL")
		is.source = sourceURL
		is.jwksURL = cfg.JWKSURL
		if err := checkFetchURL(cfg.JWKSURL); err != nil {
			problems = append(problems, "JWKSURL: "+err.Error())
		}
	}
	if cfg.Discover {
		sources = append(sources, "Discover")
		is.source = sourceDiscover
		if err := checkFetchURL(cfg.Issuer); err != nil {
			problems = append(problems, "Issuer (with Discover): "+err.Error())
		}
	}
	if cfg.JWKSFile != "" {
		sources = append(sources, "JWKSFile")
		is.source = sourceFile
	}
	if len(cfg.JWKS) > 0 {
		sources = append(sources, "JWKS")
		is.source = sourceInline
	}
	if len(cfg.Secret) > 0 {
		sources = append(sources, "Secret")
		is.source = sourceSecret
	}
	if len(sources) != 1 {
		problems = append(problems, fmt.Sprintf("set exactly one key source of JWKSURL, Discover, JWKSFile, JWKS and Secret, not %d", len(sources)))
	}
	if len(cfg.Algorithms) == 0 {
		is.algs = defaultAsymmetric
		if is.source == sourceSecret {
			is.algs = defaultSymmetric
		}
	}
	for _, name := range cfg.Algorithms {
		a := parseAlg([]byte(name))
		if a == algInvalid {
			problems = append(problems, fmt.Sprintf("algorithm %q is not supported", name))
			continue
		}
		is.algs |= setOf(a)
	}
	if is.source == sourceSecret && is.algs&^hmacAlgs != 0 {
		problems = append(problems, "a Secret verifies only HS256, HS384 and HS512")
	}
	if is.source == sourceSecret {
		if err := checkSecretLength(len(cfg.Secret), is.algs); err != nil {
			problems = append(problems, "Secret: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("issuer %q: %s", cfg.Issuer, strings.Join(problems, "; "))
	}
	return is, nil
}

// checkFetchURL accepts absolute http and https URLs.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("not an absolute http or https URL")
	}
	return nil
}

func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

// typeMatches compares a typ header with the required type (RFC 7515
// §4.1.9: media types are case-insensitive and may omit "application/").
func (is *issuer) typeMatches(typ []byte) bool {
	if is.typ == "" {
		return true
	}
	if len(typ) > 12 && strings.EqualFold(string(typ[:12]), "application/") {
		typ = typ[12:]
	}
	return strings.EqualFold(string(typ), is.typ)
}

func (is *issuer) acceptsAudience(aud []byte) bool {
	for _, a := range is.audiences {
		if stringEquals(aud, a) {
			return true
		}
	}
	return false
}
