package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Revocation revokes one token, named by its TokenID (the jti claim), or
// every token of a client issued before a time. Exactly one of TokenID
// and ClientID is set.
type Revocation struct {
	// Issuer is the iss claim of the revoked tokens.
	Issuer string
	// TokenID is the jti claim of the revoked token.
	TokenID string
	// ClientID, for a client revocation, is the client (the client_id
	// claim, or sub when there is none) whose tokens issued before Before
	// are revoked.
	ClientID string
	// Before ends a client revocation: the client's tokens issued (iat)
	// before it are revoked, and so are tokens without iat. As iat counts
	// whole seconds, Before is rounded up to the second: tokens issued
	// within the second of Before are revoked too.
	Before time.Time
	// Expires is when the revocation may be forgotten: when the revoked
	// token expires, and for a client revocation Before plus the issuer's
	// longest token lifetime, both plus a margin for clock skew. The set
	// drops expired revocations by itself.
	Expires time.Time
}

// Limits on the values of a revocation: a set holds strings of client
// revocations as they are, so they are bounded.
const (
	MaxIssuerLength   = 2048
	MaxTokenIDLength  = 256
	MaxClientIDLength = 256
)

// IsClient reports whether r revokes a client's tokens rather than one
// token.
func (r Revocation) IsClient() bool { return r.TokenID == "" }

// Validate reports what is wrong with r, or nil.
func (r Revocation) Validate() error {
	switch {
	case r.Issuer == "":
		return errors.New("revocation: no issuer")
	case len(r.Issuer) > MaxIssuerLength:
		return fmt.Errorf("revocation: issuer longer than %d bytes", MaxIssuerLength)
	case r.TokenID == "" && r.ClientID == "":
		return errors.New("revocation: neither a token id nor a client id")
	case r.TokenID != "" && r.ClientID != "":
		return errors.New("revocation: both a token id and a client id; revoke one or the other")
	case len(r.TokenID) > MaxTokenIDLength:
		return fmt.Errorf("revocation: token id longer than %d bytes", MaxTokenIDLength)
	case len(r.ClientID) > MaxClientIDLength:
		return fmt.Errorf("revocation: client id longer than %d bytes", MaxClientIDLength)
	case r.ClientID != "" && r.Before.IsZero():
		return errors.New("revocation: a client revocation needs a time (Before)")
	case r.Expires.IsZero():
		return errors.New("revocation: no expiry")
	}
	return nil
}

// String describes r without its issuer, for logs: token ids and client
// ids are safe to log, unlike tokens.
func (r Revocation) String() string {
	if r.IsClient() {
		return fmt.Sprintf("client %q before %s", r.ClientID, r.Before.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("token %q", r.TokenID)
}

// Wire is the JSON form of a revocation, in feeds, in Redis and in files:
//
//	{"iss": "https://auth.example.com", "jti": "Zm9v...", "exp": 1767225600}
//	{"iss": "https://auth.example.com", "client_id": "billing", "before": 1767222000, "exp": 1767308700}
//
// Times are NumericDates (seconds since 1970): before is rounded up, so a
// token is revoked when its iat is less than before. iss may be left out
// where the context names the issuer, as in a feed.
type Wire struct {
	Issuer   string `json:"iss,omitempty"`
	TokenID  string `json:"jti,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Before   int64  `json:"before,omitempty"`
	Expires  int64  `json:"exp"`
}

// ToWire returns the JSON form of r.
func (r Revocation) ToWire() Wire {
	w := Wire{Issuer: r.Issuer, TokenID: r.TokenID, ClientID: r.ClientID, Expires: ceilUnix(r.Expires)}
	if r.IsClient() {
		w.Before = ceilUnix(r.Before)
	}
	return w
}

// Revocation returns the revocation of w, of issuer when w names none,
// and checks it.
func (w Wire) Revocation(issuer string) (Revocation, error) {
	if w.Issuer != "" {
		issuer = w.Issuer
	}
	if w.Expires <= 0 || w.Expires > maxDate || w.Before < 0 || w.Before > maxDate {
		return Revocation{}, errors.New("revocation: exp or before out of range")
	}
	r := Revocation{Issuer: issuer, TokenID: w.TokenID, ClientID: w.ClientID, Expires: time.Unix(w.Expires, 0)}
	if w.Before > 0 {
		r.Before = time.Unix(w.Before, 0)
	}
	if err := r.Validate(); err != nil {
		return Revocation{}, err
	}
	return r, nil
}

// Marshal returns the JSON of r.
func (r Revocation) Marshal() []byte {
	b, _ := json.Marshal(r.ToWire()) // cannot fail: strings and integers
	return b
}

// Unmarshal reads the JSON of a revocation of issuer, unless it names its
// own.
func Unmarshal(data []byte, issuer string) (Revocation, error) {
	var w Wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Revocation{}, fmt.Errorf("revocation: %w", err)
	}
	return w.Revocation(issuer)
}

// maxDate bounds NumericDates, as the token package does (2242).
const maxDate = 1 << 33

// ceilUnix returns t in seconds since 1970, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 && s < math.MaxInt64 {
		s++
	}
	return s
}
