package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// fetcher is the HTTP client of jwk.Cache and of discovery: it bounds the
// time and size of every response, always closes its body, and follows only
// the redirects that keep a fetch as safe as it was asked for.
type fetcher struct {
	ctx     context.Context
	client  *http.Client
	timeout time.Duration
	limit   int64
}

// maxRedirects is how many redirects a fetch follows, as in net/http.
const maxRedirects = 10

// newFetcher returns the fetcher of a verifier. It uses a shallow copy of
// the configured client, whose own redirect policy, if any, still applies
// after checkRedirect.
func newFetcher(ctx context.Context, cfg *config) *fetcher {
	client := *cfg.client
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkRedirect(req, via); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &fetcher{ctx: ctx, client: &client, timeout: cfg.fetchTimeout, limit: cfg.maxKeySetBytes}
}

// checkRedirect refuses a redirect that makes a fetch less safe than it was
// asked for: from https to http, or to another host (names compared without
// case; the port may change). Keys, and the metadata naming them, come
// from where they were configured or discovered, or not at all.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("redirect refused: stopped after %d redirects", maxRedirects)
	}
	for _, prev := range via {
		if prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect refused: from https to http")
		}
	}
	if len(via) > 0 && !strings.EqualFold(req.URL.Hostname(), via[0].URL.Hostname()) {
		return fmt.Errorf("redirect refused: from host %s to host %s", via[0].URL.Hostname(), req.URL.Hostname())
	}
	return nil
}

// Get fetches u and returns the response with its body read into memory.
func (f *fetcher) Get(u string) (*http.Response, error) {
	res, _, err := f.get(u)
	return res, err
}

func (f *fetcher) get(u string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := f.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, f.limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > f.limit {
		return nil, nil, fmt.Errorf("response of %s is larger than %d bytes", u, f.limit)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, body, nil
}

// keySetFetcher is the HTTP client of jwk.Cache: a fetcher that refuses a
// key set holding private key material before it is parsed, so that such
// a set never replaces the keys fetched before.
type keySetFetcher struct{ *fetcher }

// Get fetches the key set at u.
func (f keySetFetcher) Get(u string) (*http.Response, error) {
	res, body, err := f.get(u)
	if err != nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	if err := checkPublic(body); err != nil {
		return nil, err // jwk.Cache names the URL
	}
	return res, nil
}

// errPrivateKey refuses a fetched key set that holds private keys.
var errPrivateKey = errors.New("key set holds private key material; refused")

// privateParams are the JWK members that hold private key material: of
// RSA keys (RFC 7518 §6.3.2), of EC and OKP keys (§6.2.2, RFC 8037 §2),
// and the secret of symmetric keys (§6.4.1).
var privateParams = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// checkPublic refuses a key set document whose keys hold private key
// material. A key set served over HTTP is public: one that is not tells
// of a leak at the issuer, and trusting its shared secrets would let
// anyone who reads it mint tokens. Keys are named by kid and members by
// name only: the error never holds key material. A document that is not
// a key set is left to the parser.
func checkPublic(doc []byte) error {
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(doc, &set) != nil {
		return nil
	}
	var found []string
	for i, key := range set.Keys {
		var names []string
		for _, p := range privateParams {
			if _, ok := key[p]; ok {
				names = append(names, p)
			}
		}
		if len(names) == 0 {
			continue
		}
		var kid string
		if json.Unmarshal(key["kid"], &kid) != nil || kid == "" {
			kid = fmt.Sprintf("#%d", i)
		}
		found = append(found, fmt.Sprintf("key %q has %s", kid, strings.Join(names, ", ")))
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%s)", errPrivateKey, strings.Join(found, "; "))
}

// register sets up the background refresh of the key set at u.
func (v *Verifier) register(is *issuer, u string) error {
	c := jwk.NewCache(v.ctx,
		jwk.WithRefreshWindow(min(v.cfg.refreshInterval, time.Minute)),
		jwk.WithErrSink(errSink(func(err error) { v.backgroundError(is, err) })),
	)
	err := c.Register(u,
		jwk.WithHTTPClient(keySetFetcher{v.fetch}),
		jwk.WithMinRefreshInterval(v.cfg.refreshInterval),
		jwk.WithIgnoreParseError(true),
		jwk.WithPostFetcher(jwk.PostFetchFunc(func(_ string, set jwk.Set) (jwk.Set, error) {
			return set, v.install(is, set, false)
		})),
	)
	if err != nil {
		return err
	}
	is.jwksURL = u
	v.caches[is] = c
	return nil
}

// install makes set the issuer's keys. The verifications cached with keys
// it no longer holds, or no longer chooses, stop serving (see
// verified.current).
//
// A well-formed key set is the issuer's word even when no key in it can
// verify (none at all, or only encryption keys, weak keys, unsupported
// curves): it replaces the keys installed before, so that keys the issuer
// removed stop verifying, and the issuer's tokens are refused as untrusted
// until a usable key comes. The error that says so is returned, reported
// and kept for [Verifier.Ready] and [ErrKeysUnavailable]. An issuer that
// never had a usable key keeps none, and stays not ready. Only a failed
// fetch (transport error, status other than 200, unparsable body, or
// private key material, see checkPublic) leaves the keys fetched before in
// place; it does not reach install.
func (v *Verifier) install(is *issuer, set jwk.Set, allowSecrets bool) error {
	old := is.keys.Load()
	ix, skipped := buildIndex(set, old, allowSecrets)
	if len(ix.all) == 0 {
		err := fmt.Errorf("issuer %s: %w (%w)", is.name, errNoUsableKey, errors.Join(skipped...))
		if old != nil {
			is.keys.Store(ix)
		}
		is.lastErr.Store(&err)
		v.report(is, 0, err)
		return err
	}
	is.keys.Store(ix)
	is.lastErr.Store(nil)
	v.report(is, len(ix.all), nil)
	// A fetch that callers wait for marks the issuer ready once it is over
	// (runFetch); a background or local one, here.
	is.mu.Lock()
	if is.inflight == nil {
		is.markReady()
	}
	is.mu.Unlock()
	return nil
}

// refresh fetches the issuer's key set now, discovering its URL first when
// needed. Calls are single-flight: callers that arrive while a fetch runs
// share its result. An onDemand call (a token with an unknown key) is
// skipped, returning false, within the cooldown after the previous one.
func (v *Verifier) refresh(ctx context.Context, is *issuer, onDemand bool) (bool, error) {
	if is.source != sourceURL && is.source != sourceDiscover {
		return false, nil
	}
	is.mu.Lock()
	c := is.inflight
	if c == nil {
		if onDemand {
			now := v.cfg.clock.Now()
			if !is.lastFetch.IsZero() && now.Sub(is.lastFetch) < v.cfg.cooldown {
				is.mu.Unlock()
				return false, nil
			}
			is.lastFetch = now
		}
		c = &fetchCall{done: make(chan struct{})}
		is.inflight = c
		go v.runFetch(is, c)
	}
	is.mu.Unlock()
	select {
	case <-c.done:
		return true, c.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (v *Verifier) runFetch(is *issuer, c *fetchCall) {
	defer close(c.done)
	ctx, cancel := context.WithTimeout(v.ctx, 2*v.cfg.fetchTimeout)
	defer cancel()
	c.err = v.fetchKeys(ctx, is)
	if c.err != nil {
		err := c.err
		if !errors.Is(err, errNoUsableKey) { // install reported it already
			is.lastErr.Store(&err)
			v.report(is, 0, err)
		}
	}
	is.mu.Lock()
	is.inflight = nil
	if c.err == nil {
		is.markReady()
	}
	is.mu.Unlock()
}

func (v *Verifier) fetchKeys(ctx context.Context, is *issuer) error {
	v.mu.Lock()
	cache := v.caches[is]
	u := is.jwksURL
	v.mu.Unlock()
	if cache == nil {
		if u == "" {
			var err error
			if u, err = v.discover(is); err != nil {
				return err
			}
		}
		v.mu.Lock()
		if cache = v.caches[is]; cache == nil {
			if err := v.register(is, u); err != nil {
				v.mu.Unlock()
				return err
			}
			cache = v.caches[is]
		}
		v.mu.Unlock()
	}
	if _, err := cache.Refresh(ctx, u); err != nil {
		return fmt.Errorf("issuer %s: keys: %w", is.name, err)
	}
	return nil
}

// metadata holds what discovery reads of an issuer's metadata.
type metadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discover reads the issuer's metadata and returns its key set URL.
func (v *Verifier) discover(is *issuer) (string, error) {
	var problems []error
	for _, u := range MetadataURLs(is.name) {
		jwksURI, err := v.readMetadata(is, u)
		if err == nil {
			return jwksURI, nil
		}
		problems = append(problems, err)
	}
	return "", fmt.Errorf("issuer %s: discovery: %w", is.name, errors.Join(problems...))
}

func (v *Verifier) readMetadata(is *issuer, u string) (string, error) {
	res, err := v.fetch.Get(u)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", u, res.Status)
	}
	var md metadata
	if err := json.NewDecoder(res.Body).Decode(&md); err != nil {
		return "", fmt.Errorf("%s: %w", u, err)
	}
	// RFC 8414 §3.3, OpenID Connect Discovery §4.3: the metadata must name
	// the issuer it was fetched for.
	if md.Issuer != is.name {
		return "", fmt.Errorf("%s: metadata names issuer %q", u, md.Issuer)
	}
	if err := checkFetchURL(md.JWKSURI); err != nil {
		return "", fmt.Errorf("%s: jwks_uri: %w", u, err)
	}
	// A key set must come at least as safely as the metadata that names it.
	if isHTTPS(is.name) && !isHTTPS(md.JWKSURI) {
		return "", fmt.Errorf("%s: jwks_uri is not https", u)
	}
	return md.JWKSURI, nil
}

// isHTTPS reports whether raw is an https URL. Schemes are compared without
// case (RFC 3986 §3.1): url.Parse lowercases them.
func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https"
}

// MetadataURLs returns the metadata addresses of an issuer, in the order
// discovery tries them: RFC 8414 §3 inserts the well-known path between
// host and path; OpenID Connect appends it.
func MetadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.Path, "/")
	oauth := *u
	oauth.Path = "/.well-known/oauth-authorization-server" + path
	oidc := *u
	oidc.Path = path + "/.well-known/openid-configuration"
	return []string{oauth.String(), oidc.String()}
}

// firstFetch fetches the issuer's keys until it succeeds, waiting between
// attempts from retryMin, doubling up to retryMax, with jitter. The time
// of the next attempt is kept for Ready.
func (v *Verifier) firstFetch(is *issuer) {
	defer v.wg.Done()
	defer is.nextRetry.Store(0)
	delay := v.cfg.retryMin
	for {
		if _, err := v.refresh(v.ctx, is, false); err == nil || is.isReady() {
			return
		}
		wait := delay/2 + rand.N(delay/2+1)
		is.nextRetry.Store(time.Now().Add(wait).UnixNano())
		t := time.NewTimer(wait)
		select {
		case <-v.ctx.Done():
			t.Stop()
			return
		case <-is.ready: // an on-demand fetch succeeded
			t.Stop()
			return
		case <-t.C:
		}
		is.nextRetry.Store(0)
		delay = min(2*delay, v.cfg.retryMax)
	}
}

// errSink adapts a function to a jwk.ErrSink.
type errSink func(error)

func (f errSink) Error(err error) { f(err) }

// backgroundError reports a failed background refresh of the issuer's key
// set; the keys fetched before keep serving.
func (v *Verifier) backgroundError(is *issuer, err error) {
	if errors.Is(err, errNoUsableKey) { // install reported it already
		return
	}
	err = fmt.Errorf("issuer %s: keys: %w", is.name, err)
	is.lastErr.Store(&err)
	v.report(is, 0, err)
}
