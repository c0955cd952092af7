// Package exchange trades tokens of an external issuer for tokens of the
// bundled issuer at its token endpoint (RFC 8693 token exchange), so that
// a gateway route can accept the external issuer's tokens and still
// forward only internal ones. Each subject token is exchanged once:
// answers are cached until the earlier of the subject token's and the
// issued token's expiry, concurrent exchanges of one token make one
// request, and refusals are cached briefly. It follows the shape of
// gateway/introspect; golang.org/x/oauth2 has no token exchange grant.
package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Exchanger exchanges subject tokens at one token endpoint. It is safe
// for concurrent use.
type Exchanger struct {
	cfg      *config
	endpoint string
	auth     string // client_secret_basic
	flight   singleflight.Group
	requests atomic.Uint64

	seed    maphash.Seed
	mu      sync.RWMutex
	entries map[uint64]*answer
}

// answer is a cached exchange: the issued token, or the refusal, until a
// time.
type answer struct {
	subject string
	token   string
	err     error
	until   int64 // unix nanoseconds
}

// Error is a refusal of the token endpoint (RFC 8693 §2.2.2), such as
// invalid_grant for a subject token that does not verify; or, with Code
// "", the endpoint could not be asked. Its text never holds a token.
type Error struct {
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string {
	if e.Code == "" {
		return "token exchange unavailable: " + e.Err.Error()
	}
	return "token exchange refused: " + e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an exchanger asking endpoint (an http or https URL) and
// authenticating as clientID with clientSecret (client_secret_basic).
func New(endpoint, clientID, clientSecret string, opts ...Option) (*Exchanger, error) {
	cfg := newConfig(opts)
	problems := cfg.problems
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("endpoint %q is not an http(s) URL", endpoint))
	}
	if clientID == "" || clientSecret == "" {
		problems = append(problems, "no client id or secret")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("exchange: %s", strings.Join(problems, "; "))
	}
	r, _ := http.NewRequest(http.MethodPost, endpoint, nil)
	r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	return &Exchanger{cfg: cfg, endpoint: endpoint, auth: r.Header.Get("Authorization"), seed: maphash.MakeSeed(), entries: map[uint64]*answer{}}, nil
}

// Requests returns the number of requests sent to the endpoint so far.
func (x *Exchanger) Requests() uint64 { return x.requests.Load() }

// Exchange returns the internal token for subject, a token that expires at
// notAfter (its verified exp), from the cache or from the endpoint. Errors
// are *Error.
func (x *Exchanger) Exchange(ctx context.Context, subject string, notAfter time.Time) (string, error) {
	if a, ok := x.get(subject); ok {
		return a.token, a.err
	}
	ch := x.flight.DoChan(subject, func() (any, error) {
		if a, ok := x.get(subject); ok {
			return a, nil
		}
		// The request is shared: no caller's cancellation ends it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.timeout)
		defer cancel()
		a, err := x.ask(rctx, subject, notAfter)
		if err != nil {
			return nil, err
		}
		x.put(a)
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		a := r.Val.(*answer)
		return a.token, a.err
	case <-ctx.Done():
		return "", &Error{Err: ctx.Err()}
	}
}

// wire is a token endpoint answer, success or error.
type wire struct {
	AccessToken      string `json:"access_token"`
	IssuedTokenType  string `json:"issued_token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (x *Exchanger) ask(ctx context.Context, subject string, notAfter time.Time) (*answer, error) {
	x.requests.Add(1)
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subject},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
	}
	if x.cfg.audience != "" {
		form.Set("audience", x.cfg.audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", x.auth)
	res, err := x.cfg.client.Do(req)
	if err != nil {
		return nil, &Error{Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, &Error{Err: err}
	}
	if len(data) > maxResponse {
		return nil, &Error{Err: errors.New("token endpoint answer larger than 64 KiB")}
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, &Error{Err: fmt.Errorf("token endpoint answered %s, not JSON", res.Status)}
	}
	now := x.cfg.now()
	if res.StatusCode == http.StatusBadRequest && w.Error != "" {
		// A refusal of this subject token: remembered briefly.
		return &answer{subject: subject, err: &Error{Code: w.Error, Description: w.ErrorDescription}, until: now.Add(x.cfg.negativeTTL).UnixNano()}, nil
	}
	if res.StatusCode != http.StatusOK || w.AccessToken == "" || w.ExpiresIn <= 0 {
		return nil, &Error{Err: fmt.Errorf("token endpoint answered %s %s", res.Status, w.Error)}
	}
	until := now.Add(time.Duration(w.ExpiresIn) * time.Second)
	if notAfter.Before(until) {
		until = notAfter
	}
	return &answer{subject: subject, token: w.AccessToken, until: until.UnixNano()}, nil
}

// get returns the answer for subject that still holds.
func (x *Exchanger) get(subject string) (*answer, bool) {
	h := maphash.String(x.seed, subject)
	x.mu.RLock()
	a := x.entries[h]
	x.mu.RUnlock()
	if a == nil || a.subject != subject || x.cfg.now().UnixNano() >= a.until {
		return nil, false
	}
	return a, true
}

// put stores a, evicting expired answers when full, and arbitrary ones if
// none has expired.
func (x *Exchanger) put(a *answer) {
	now := x.cfg.now().UnixNano()
	if a.until <= now {
		return
	}
	h := maphash.String(x.seed, a.subject)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.entries[h]; !ok && len(x.entries) >= x.cfg.cacheSize {
		for k, e := range x.entries {
			if e.until <= now || len(x.entries) >= x.cfg.cacheSize {
				delete(x.entries, k)
			}
		}
	}
	x.entries[h] = a
}
