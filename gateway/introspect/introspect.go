package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portcullis/portcullis/gateway/token"
)

// Introspector asks one issuer's introspection endpoint about tokens, and
// caches the answers. It is safe for concurrent use.
type Introspector struct {
	cfg      *config
	issuer   string
	endpoint string
	auth     string // the Authorization header: client_secret_basic
	cache    *cache
	flight   singleflight.Group
	requests atomic.Uint64
}

// New returns an introspector of the tokens of issuer, asking endpoint
// (an http or https URL) and authenticating as clientID with clientSecret
// (client_secret_basic, RFC 6749 §2.3.1).
func New(issuer, endpoint, clientID, clientSecret string, opts ...Option) (*Introspector, error) {
	cfg := newConfig(opts)
	problems := cfg.problems
	if issuer == "" {
		problems = append(problems, "no issuer")
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("endpoint %q is not an http(s) URL", endpoint))
	}
	if clientID == "" || clientSecret == "" {
		problems = append(problems, "no client id or secret")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("introspect: %s", strings.Join(problems, "; "))
	}
	r, _ := http.NewRequest(http.MethodPost, endpoint, nil)
	r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	return &Introspector{
		cfg:      cfg,
		issuer:   issuer,
		endpoint: endpoint,
		auth:     r.Header.Get("Authorization"),
		cache:    newCache(cfg.cacheSize),
	}, nil
}

// Requests returns the number of introspection requests sent so far.
func (in *Introspector) Requests() uint64 { return in.requests.Load() }

// Refusals of tokens the issuer says are not active, or describes
// wrongly.
var (
	errInactive       = &token.Error{Kind: token.ErrUntrusted, Reason: "token not active"}
	errExpired        = &token.Error{Kind: token.ErrExpired, Reason: "token expired"}
	errNotYetValid    = &token.Error{Kind: token.ErrNotYetValid, Reason: "token not valid yet"}
	errIssuer         = &token.Error{Kind: token.ErrUntrusted, Reason: "token issuer not trusted"}
	errAudience       = &token.Error{Kind: token.ErrUntrusted, Reason: "token audience not accepted"}
	errNoExpiry       = &token.Error{Kind: token.ErrBadClaims, Reason: "introspected token has no exp"}
	errNoSubject      = &token.Error{Kind: token.ErrBadClaims, Reason: "introspected token has neither sub nor client_id"}
	errPerms          = &token.Error{Kind: token.ErrBadClaims, Reason: "introspected token's permission claim is not an object of masks"}
	errCanceled       = &token.Error{Kind: token.ErrKeysUnavailable, Reason: "token introspection canceled"}
	reasonUnavailable = "token introspection unavailable; retry shortly"
)

// Introspect returns the principal of raw, an access token of the issuer,
// from the cache or from the issuer. Errors are *token.Error: a refusal
// when the token is not active, [token.ErrKeysUnavailable] when the issuer
// could not be asked. It matches [token.Introspect]; a cached answer
// allocates nothing.
func (in *Introspector) Introspect(ctx context.Context, raw string) (*token.Principal, error) {
	if a, ok := in.cache.get(raw, in.cfg.now().UnixNano()); ok {
		return a.principal, a.err
	}
	ch := in.flight.DoChan(raw, func() (any, error) {
		if a, ok := in.cache.get(raw, in.cfg.now().UnixNano()); ok {
			return a, nil
		}
		// The request is shared: no caller's cancellation ends it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.timeout)
		defer cancel()
		a, err := in.ask(rctx, raw)
		if err != nil {
			return nil, err
		}
		in.cache.put(a, in.cfg.now().UnixNano())
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		a := r.Val.(*answer)
		return a.principal, a.err
	case <-ctx.Done():
		return nil, errCanceled
	}
}

// Cached returns the principal of raw's answer when one is at hand, still
// holds and says the token is active, with no request to the issuer; it
// matches [token.IntrospectCached] and does not allocate.
func (in *Introspector) Cached(raw string) (*token.Principal, bool) {
	a, ok := in.cache.get(raw, in.cfg.now().UnixNano())
	if !ok || a.err != nil {
		return nil, false
	}
	return a.principal, true
}

// wire is an introspection answer (RFC 7662 §2.2), the members read.
type wire struct {
	Active    bool            `json:"active"`
	ClientID  string          `json:"client_id"`
	Subject   string          `json:"sub"`
	Expiry    json.Number     `json:"exp"`
	IssuedAt  json.Number     `json:"iat"`
	NotBefore json.Number     `json:"nbf"`
	Audience  json.RawMessage `json:"aud"`
	Issuer    string          `json:"iss"`
	ID        string          `json:"jti"`
	Tier      string          `json:"tier"`
}

// ask sends one introspection request and makes an answer of it.
func (in *Introspector) ask(ctx context.Context, raw string) (*answer, error) {
	in.requests.Add(1)
	body := "token=" + url.QueryEscape(raw) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, in.unavailable(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", in.auth)
	res, err := in.cfg.client.Do(req)
	if err != nil {
		return nil, in.unavailable(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	switch {
	case err != nil:
		return nil, in.unavailable(err)
	case res.StatusCode != http.StatusOK:
		return nil, in.unavailable(fmt.Errorf("introspection endpoint answered %s", res.Status))
	case len(data) > maxResponse:
		return nil, in.unavailable(errors.New("introspection answer larger than 64 KiB"))
	}
	a, err := in.answer(raw, data)
	if err != nil {
		return nil, in.unavailable(err)
	}
	return a, nil
}

// unavailable logs why the issuer could not be asked, and returns the
// refusal that says so.
func (in *Introspector) unavailable(err error) error {
	in.cfg.logger.LogAttrs(context.Background(), slog.LevelError, "token introspection failed",
		slog.String("issuer", in.issuer), slog.String("endpoint", in.endpoint), slog.Any("error", err))
	return &token.Error{Kind: token.ErrKeysUnavailable, Reason: reasonUnavailable, Err: err}
}

// answer makes the answer of an introspection response: an error only
// when the response is not one.
func (in *Introspector) answer(raw string, data []byte) (*answer, error) {
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&members); err != nil || members == nil {
		return nil, errors.New("introspection answer is not a JSON object")
	}
	var w wire
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("introspection answer: %w", err)
	}
	if _, ok := members["active"]; !ok {
		return nil, errors.New("introspection answer has no active member")
	}
	now := in.cfg.now()
	refused := func(err error) *answer {
		return &answer{raw: raw, err: err, until: now.Add(in.cfg.negativeTTL).UnixNano()}
	}
	if !w.Active {
		return refused(errInactive), nil
	}
	exp, ok := seconds(w.Expiry)
	if !ok {
		return refused(errNoExpiry), nil
	}
	if !now.Before(exp.Add(in.cfg.skew)) {
		return refused(errExpired), nil
	}
	if nbf, ok := seconds(w.NotBefore); ok && nbf.After(now.Add(in.cfg.skew)) {
		return refused(errNotYetValid), nil
	}
	if w.Issuer != "" && w.Issuer != in.issuer {
		return refused(errIssuer), nil
	}
	if len(w.Audience) > 0 && len(in.cfg.audiences) > 0 && !in.audienceOK(w.Audience) {
		return refused(errAudience), nil
	}
	p := &token.Principal{Subject: w.Subject, ClientID: w.ClientID, Issuer: in.issuer, Tier: w.Tier, TokenID: w.ID, ExpiresAt: exp}
	if p.Subject == "" {
		p.Subject = p.ClientID
	}
	if p.ClientID == "" {
		p.ClientID = p.Subject
	}
	if p.ClientID == "" {
		return refused(errNoSubject), nil
	}
	if iat, ok := seconds(w.IssuedAt); ok {
		p.IssuedAt = iat
	}
	p.Masks = map[string]uint64{}
	if perms, ok := members[in.cfg.permissionClaim]; ok && string(perms) != "null" {
		var masks map[string]uint64
		if err := json.Unmarshal(perms, &masks); err != nil {
			return refused(errPerms), nil
		}
		for d, m := range masks {
			if m != 0 {
				p.Masks[d] = m
			}
		}
	}
	until := exp.Add(in.cfg.skew)
	if limit := now.Add(in.cfg.cacheMax); limit.Before(until) {
		until = limit
	}
	return &answer{raw: raw, principal: p, until: until.UnixNano()}, nil
}

// audienceOK reports whether aud, a string or an array of strings, names
// one of the accepted audiences.
func (in *Introspector) audienceOK(aud json.RawMessage) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return slices.Contains(in.cfg.audiences, one)
	}
	var many []string
	if json.Unmarshal(aud, &many) != nil {
		return false
	}
	for _, a := range many {
		if slices.Contains(in.cfg.audiences, a) {
			return true
		}
	}
	return false
}

// seconds reads a NumericDate: whole seconds since the epoch.
func seconds(n json.Number) (time.Time, bool) {
	if n == "" {
		return time.Time{}, false
	}
	s, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || s <= 0 || s > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(s, 0), true
}
