package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Verifier verifies bearer tokens: compact JWS tokens (RFC 7515) carrying
// JWT claims (RFC 7519) signed by one of its trusted issuers. It is safe
// for concurrent use.
type Verifier struct {
	cfg     *config
	issuers map[string]*issuer // by iss
	list    []*issuer
	cache   *tokenCache
	fetch   *fetcher

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	caches map[*issuer]*jwk.Cache

	errTooLarge *Error
	slots       chan struct{} // one per signature verification in flight

	strings interned[string]            // subjects, client ids, tiers
	masks   interned[map[string]uint64] // by the raw perms claim
}

// NewVerifier returns a verifier that trusts issuers. It reads local key
// sets at once, then follows key set files as they change, and starts
// fetching remote ones in the background; [Verifier.Ready]
// tells when every issuer's keys are in. Background work stops when ctx is
// done or [Verifier.Close] is called.
func NewVerifier(ctx context.Context, issuers []Issuer, opts ...Option) (*Verifier, error) {
	cfg := newConfig(opts)
	if len(issuers) == 0 && cfg.opaque == nil {
		return nil, errors.New("token: no trusted issuer")
	}
	switch {
	case cfg.opaqueCached != nil && cfg.opaque == nil:
		cfg.invalid("WithOpaqueCache without WithOpaque")
	case cfg.opaqueCached != nil:
		cfg.opaque.cached = cfg.opaqueCached
	}
	var problems []error
	if len(cfg.problems) > 0 {
		problems = append(problems, fmt.Errorf("invalid options: %s", strings.Join(cfg.problems, "; ")))
	}
	v := &Verifier{
		cfg:         cfg,
		issuers:     make(map[string]*issuer, len(issuers)),
		cache:       newTokenCache(cfg.cacheSize),
		caches:      make(map[*issuer]*jwk.Cache),
		errTooLarge: refuse(ErrMalformed, fmt.Sprintf("token larger than %d bytes", cfg.maxSize)),
		slots:       make(chan struct{}, max(cfg.maxVerifying, 1)),
	}
	readsScopes := false
	for _, c := range issuers {
		is, err := newIssuer(c, cfg.permissionLookup)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if cfg.opaque != nil && cfg.opaque.issuer == is.name {
			problems = append(problems, fmt.Errorf("issuer %q is opaque (WithOpaque) and verified with keys", is.name))
			continue
		}
		if _, dup := v.issuers[is.name]; dup {
			problems = append(problems, fmt.Errorf("issuer %q is listed twice", is.name))
			continue
		}
		if err := v.loadLocal(is, c); err != nil {
			problems = append(problems, err)
			continue
		}
		v.issuers[is.name] = is
		v.list = append(v.list, is)
		if is.scopes != nil && !readsScopes {
			readsScopes = true
			if err := checkScopeClaims(cfg); err != nil {
				problems = append(problems, err)
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("token: %w", errors.Join(problems...))
	}
	for _, is := range v.list {
		if is.typ == "" {
			cfg.logger.LogAttrs(ctx, slog.LevelWarn, "token issuer accepts tokens of any type (Type any): ID tokens and other JWTs it signs for these audiences pass as access tokens",
				slog.String("issuer", is.name))
		}
	}
	v.ctx, v.cancel = context.WithCancel(ctx)
	v.fetch = newFetcher(v.ctx, cfg)
	for _, is := range v.list {
		switch is.source {
		case sourceURL, sourceDiscover:
			v.wg.Add(1)
			go v.firstFetch(is)
		case sourceFile:
			v.wg.Add(1)
			go v.followKeyFile(is, is.keyFile)
		}
	}
	return v, nil
}

// loadLocal installs the keys of issuers whose keys are local.
func (v *Verifier) loadLocal(is *issuer, c Issuer) error {
	doc := c.JWKS
	switch is.source {
	case sourceSecret:
		ix, err := secretIndex(c.Secret, "")
		if err != nil {
			return fmt.Errorf("issuer %q: %w", is.name, err)
		}
		is.keys.Store(ix)
		is.markReady()
		return nil
	case sourceFile:
		var err error
		if doc, is.keyFile, err = readKeyFile(is, c.JWKSFile, v.cfg.maxKeySetBytes); err != nil {
			return err
		}
	case sourceInline:
	default:
		return nil
	}
	set, err := parseLocalKeySet(is, doc)
	if err != nil {
		return err
	}
	return v.install(is, set, true)
}

// Ready returns nil once the keys of every issuer were fetched at least
// once, else an error naming the issuers still waiting, why their last
// fetch failed, and when the next attempt is. A gateway reports itself
// not ready until then.
//
// Once ready, a verifier stays ready: it can answer for every issuer. When
// an issuer is down, the keys fetched last keep serving; when it answers
// with a key set without a usable key, its tokens are refused as untrusted
// until it publishes one again.
func (v *Verifier) Ready() error {
	var waiting []string
	for _, is := range v.list {
		if is.isReady() {
			continue
		}
		msg := "issuer " + is.name + ": keys not fetched yet"
		if err := is.lastErr.Load(); err != nil {
			msg += ": " + (*err).Error()
		}
		if next := is.nextRetry.Load(); next != 0 {
			if d := time.Until(time.Unix(0, next)); d > 0 {
				msg += fmt.Sprintf("; next attempt in %v", d.Round(time.Millisecond))
			} else {
				msg += "; next attempt now"
			}
		}
		waiting = append(waiting, msg)
	}
	if len(waiting) == 0 {
		return nil
	}
	return &Error{Kind: ErrKeysUnavailable, Reason: "token: " + strings.Join(waiting, "; ")}
}

// WaitReady waits until [Verifier.Ready] returns nil or ctx is done.
func (v *Verifier) WaitReady(ctx context.Context) error {
	for _, is := range v.list {
		select {
		case <-is.ready:
		case <-ctx.Done():
			if err := v.Ready(); err != nil {
				return fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil
		}
	}
	return nil
}

// Close stops the background fetches and the following of key set files.
func (v *Verifier) Close() {
	v.cancel()
	v.wg.Wait()
}

// Verify verifies raw, a compact JWS, and returns its principal. A
// token verified before and still valid is answered from the cache,
// without allocating. Errors are *[Error], their Kind one of the sentinels
// such as [ErrExpired]; [ErrKeysUnavailable] and [ErrOverloaded] say that
// the verifier could not decide, not that the token is bad.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, errMissing
	}
	if len(raw) > v.cfg.maxSize {
		return nil, v.errTooLarge
	}
	now := v.cfg.clock.Now()
	if p, ok := v.cache.get(raw, now); ok {
		if err := v.revoked(p); err != nil {
			return nil, err
		}
		return p, nil
	}
	if v.cfg.opaque != nil && v.cfg.opaque.owns(raw) {
		return v.introspected(ctx, raw)
	}
	p, e, err := v.verify(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.revoked(p); err != nil {
		return nil, err
	}
	v.cache.put(e, now)
	return p, nil
}

// Cached reports whether raw is in the cache of verified tokens and would
// be answered from it now: verified before, not expired, not revoked, and
// its key still the one its issuer's key set chooses; or, with
// [WithOpaqueCache], a token of the opaque issuer whose active
// introspection answer is at hand and which is not revoked. It costs a
// hash and a map lookup (and, with an opaque issuer, a look at the claims
// of a JWT not in the cache), no cryptography and no request, and does not
// allocate for tokens of up to 2 KiB of claims. A guard that holds back
// callers before their tokens are verified lets these through.
func (v *Verifier) Cached(raw string) bool {
	if raw == "" || len(raw) > v.cfg.maxSize {
		return false
	}
	p, ok := v.cache.get(raw, v.cfg.clock.Now())
	if !ok {
		if o := v.cfg.opaque; o != nil && o.cached != nil && o.owns(raw) {
			p, ok = o.cached(raw)
		}
	}
	return ok && v.revoked(p) == nil
}

// bytesOf returns the bytes of s without copying. They must not be
// modified: only hashing, decoding and comparison read them.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
