package dpop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs    algSet
	names   string // the accepted algorithms, space separated, for challenges
	maxAge  time.Duration
	skew    time.Duration
	maxSize int
	replay  ReplayStore
	nonces  *Nonces
	now     func() time.Time
}

// New returns a verifier.
func New(opts ...Option) (*Verifier, error) {
	c := newConfig(opts)
	v := &Verifier{maxAge: c.maxAge, skew: c.skew, maxSize: c.maxSize, replay: c.replay, nonces: c.nonces, now: c.now}
	var names []string
	for _, name := range c.algs {
		a := parseAlg([]byte(name))
		if a == algInvalid {
			c.invalid("algorithm %q is not one of %s", name, strings.Join(Algorithms(), ", "))
			continue
		}
		if !v.algs.has(a) {
			names = append(names, name)
		}
		v.algs |= 1 << a
	}
	if v.algs == 0 && len(c.problems) == 0 {
		c.invalid("no algorithm")
	}
	if len(c.problems) > 0 {
		return nil, fmt.Errorf("dpop: invalid options: %s", strings.Join(c.problems, "; "))
	}
	v.names = strings.Join(names, " ")
	if v.replay == nil {
		m := NewMemory(defaultMaxMemory)
		m.now = c.now
		v.replay = m
	}
	return v, nil
}

// Algorithms returns the accepted algorithms, space separated, as the
// algs parameter of a DPoP challenge (RFC 9449 §7.1) and the issuer's
// dpop_signing_alg_values_supported take them.
func (v *Verifier) Algorithms() string { return v.names }

// Nonce returns the current server nonce, or "" when none is required.
func (v *Verifier) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.Nonce(v.now())
}

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method of the request, the proof's htm.
	Method string
	// URL is the URL the client used, the proof's htu; its query and
	// fragment do not count.
	URL string
	// AccessToken, when the request carries one, must be the one the
	// proof's ath hashes; when "", the proof must have no ath.
	AccessToken string
	// KeyThumbprint, when set, is the token's cnf.jkt: the proof must be
	// signed by that key.
	KeyThumbprint string
}

// Proof is a verified proof.
type Proof struct {
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// the cnf.jkt of a token bound to it.
	KeyThumbprint string
	// Algorithm is the proof's alg.
	Algorithm string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
}

// proofHeader returns the single DPoP header of header (RFC 9449 §4.3 (1)).
func proofHeader(header http.Header) (string, *Error) {
	values := header.Values("DPoP")
	switch len(values) {
	case 0:
		return "", errMissing
	case 1:
		return values[0], nil
	}
	return "", errTwoHeaders
}

// Verify checks the proof of the DPoP header of header against r, as RFC
// 9449 §4.3 says, and remembers it, so that it is accepted once. A
// refusal is an *[Error].
func (v *Verifier) Verify(ctx context.Context, header http.Header, r Request) (Proof, error) {
	raw, err := proofHeader(header)
	if err != nil {
		return Proof{}, err
	}
	p, jti, err := v.check(raw, r)
	if err != nil {
		return Proof{}, err
	}
	if err := v.remember(ctx, p.KeyThumbprint, jti); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// remember refuses a proof seen before; keys are issuer-independent:
// SHA-256 of the key's thumbprint and the jti.
func (v *Verifier) remember(ctx context.Context, thumbprint string, jti []byte) *Error {
	h := sha256.New()
	h.Write([]byte(thumbprint))
	h.Write([]byte{0})
	h.Write(jti)
	var key [32]byte
	h.Sum(key[:0])
	fresh, err := v.replay.Remember(ctx, key, v.maxAge+v.skew)
	switch {
	case errors.Is(err, errFull):
		return errReplayFull
	case err != nil:
		return errReplayBroken
	case !fresh:
		return errReplayed
	}
	return nil
}

// check verifies everything but replay; it returns the proof and its jti.
func (v *Verifier) check(raw string, r Request) (Proof, []byte, *Error) {
	if r.Method == "" || r.URL == "" {
		return Proof{}, nil, errNoTarget
	}
	if len(raw) > v.maxSize {
		return Proof{}, nil, errTooLarge
	}
	if raw == "" {
		return Proof{}, nil, errMissing
	}
	dot1 := strings.IndexByte(raw, '.')
	dot2 := strings.LastIndexByte(raw, '.')
	if dot1 <= 0 || dot2 == dot1 || strings.IndexByte(raw[dot1+1:dot2], '.') >= 0 {
		return Proof{}, nil, errCompact
	}
	buf := make([]byte, 0, b64.DecodedLen(dot2))
	header, err := b64.Strict().AppendDecode(buf, []byte(raw[:dot1]))
	if err != nil {
		return Proof{}, nil, errCompact
	}
	n := len(header)
	claims, err := b64.Strict().AppendDecode(header, []byte(raw[dot1+1:dot2]))
	if err != nil {
		return Proof{}, nil, errCompact
	}
	header, claims = claims[:n:n], claims[n:]
	sig, err := b64.Strict().DecodeString(raw[dot2+1:])
	if err != nil {
		return Proof{}, nil, errCompact
	}

	a, key, perr := v.header(header)
	if perr != nil {
		return Proof{}, nil, perr
	}
	if !verify(a, key, []byte(raw[:dot2]), sig) {
		return Proof{}, nil, errSignature
	}
	if r.KeyThumbprint != "" && subtle.ConstantTimeCompare([]byte(r.KeyThumbprint), []byte(key.thumbprint)) != 1 {
		return Proof{}, nil, errThumbprint
	}
	p := Proof{KeyThumbprint: key.thumbprint, Algorithm: a.String()}
	jti, perr := v.claims(claims, r, &p)
	if perr != nil {
		return Proof{}, nil, perr
	}
	return p, jti, nil
}

// header reads the protected header: typ, alg, jwk (§4.2).
func (v *Verifier) header(raw []byte) (alg, *publicKey, *Error) {
	var typ, algName, jwk []byte
	var seen uint8
	o := newObject(raw)
	for o.next() {
		var bit uint8
		switch string(o.name) {
		case "typ":
			bit = 1
			s, ok := stringValue(o.val)
			if !ok {
				return 0, nil, errType
			}
			typ = s
		case "alg":
			bit = 2
			s, ok := stringValue(o.val)
			if !ok {
				return 0, nil, errAlg
			}
			algName = s
		case "jwk":
			bit = 4
			jwk = o.val
		case "crit":
			return 0, nil, errCrit
		default:
			continue
		}
		if seen&bit != 0 {
			return 0, nil, errDuplicate
		}
		seen |= bit
	}
	if o.err != nil {
		return 0, nil, errHeader
	}
	if string(typ) != "dpop+jwt" {
		return 0, nil, errType
	}
	a := parseAlg(algName)
	if !v.algs.has(a) {
		return 0, nil, errAlg
	}
	if len(jwk) == 0 || jwk[0] != '{' {
		return 0, nil, errNoJWK
	}
	key, err := parseJWK(jwk)
	if err != nil {
		return 0, nil, err
	}
	if !a.fits(key) {
		return 0, nil, errKeyAlg
	}
	return a, key, nil
}

// claims checks the proof's claims against r (§4.3 (7) to (12)).
func (v *Verifier) claims(raw []byte, r Request, p *Proof) ([]byte, *Error) {
	var jti, htm, htu, ath, nonce []byte
	var iat float64
	var seen uint8
	o := newObject(raw)
	for o.next() {
		var dst *[]byte
		var bit uint8
		switch string(o.name) {
		case "jti":
			dst, bit = &jti, 1
		case "htm":
			dst, bit = &htm, 2
		case "htu":
			dst, bit = &htu, 4
		case "ath":
			dst, bit = &ath, 8
		case "nonce":
			dst, bit = &nonce, 16
		case "iat":
			bit = 32
		default:
			continue
		}
		if seen&bit != 0 {
			return nil, errDuplicate
		}
		seen |= bit
		if dst == nil {
			f, err := strconv.ParseFloat(string(o.val), 64)
			if err != nil || o.val[0] == '"' || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, errIAT
			}
			iat = f
			continue
		}
		s, ok := stringValue(o.val)
		if !ok {
			return nil, invalid("DPoP proof claim " + string(o.name) + " is not a string")
		}
		*dst = s
	}
	if o.err != nil {
		return nil, errClaims
	}
	if len(jti) == 0 || len(jti) > DefaultMaxJTI {
		return nil, errJTI
	}
	if string(htm) != r.Method {
		return nil, errHTM
	}
	if !v.sameURL(htu, r.URL) {
		return nil, errHTU
	}
	if seen&32 == 0 {
		return nil, errIAT
	}
	now := v.now()
	if iat < 0 {
		return nil, errOld
	}
	if iat > float64(math.MaxInt64/int64(time.Second)) {
		return nil, errFuture
	}
	issued := time.Unix(0, int64(iat*float64(time.Second)))
	if issued.After(now.Add(v.skew)) {
		return nil, errFuture
	}
	if issued.Before(now.Add(-v.maxAge)) {
		return nil, errOld
	}
	p.IssuedAt = issued
	switch {
	case r.AccessToken != "" && seen&8 == 0:
		return nil, errNoATH
	case r.AccessToken != "":
		sum := sha256.Sum256([]byte(r.AccessToken))
		var want [43]byte
		b64.Encode(want[:], sum[:])
		if subtle.ConstantTimeCompare(ath, want[:]) != 1 {
			return nil, errATH
		}
	case seen&8 != 0:
		return nil, errATHNoToken
	}
	if v.nonces != nil && (seen&16 == 0 || !v.nonces.Valid(nonce, now)) {
		return nil, &Error{Kind: ErrNonceRequired, Reason: "DPoP proof must carry the server's current nonce", Nonce: v.nonces.Nonce(now)}
	}
	return bytes.Clone(jti), nil
}

// sameURL reports whether the proof's htu is the request's URL, both
// normalized, without query and fragment (§4.3 (9)).
func (v *Verifier) sameURL(htu []byte, want string) bool {
	if want == "" {
		return false
	}
	got, ok := normalizeURL(string(htu))
	if !ok {
		return false
	}
	if got == want {
		return true
	}
	w, ok := normalizeURL(want)
	return ok && got == w
}
