package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Set is the revocations a gateway replica checks every token against,
// held in memory and kept current by its sources: issuers' feeds or
// Redis. Checking costs a hash and a map lookup, with no network round
// trip and no allocation. It is safe for concurrent use.
type Set struct {
	cfg     *config
	tokens  *tokenTable
	clients clientTable
	sources []*source
	loaded  atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a set that follows the sources its options name, in the
// background until ctx is done or [Set.Close] is called. [Set.Ready] says
// when every source has been read once; until then [Set.Loaded] is false
// and a verifier refuses tokens as undecided. A set without sources holds
// what [Set.Add] gives it.
func New(ctx context.Context, opts ...Option) (*Set, error) {
	cfg := newConfig(opts)
	if len(cfg.problems) > 0 {
		return nil, fmt.Errorf("revocation: invalid options: %s", strings.Join(cfg.problems, "; "))
	}
	s := &Set{cfg: cfg, tokens: newTokenTable()}
	s.ctx, s.cancel = context.WithCancel(ctx)
	// Every source exists before any follower runs: a follower that
	// loads reads the whole list.
	var followers []func()
	for _, f := range cfg.feeds {
		src := s.newSource("feed of " + f.issuer)
		if f.url != "" {
			src.setName("feed " + f.url)
		}
		followers = append(followers, func() { s.followFeed(src, f) })
	}
	for _, r := range cfg.redis {
		src := s.newSource("redis " + r.name())
		followers = append(followers, func() { s.followRedis(src, r) })
	}
	s.updateLoaded()
	for _, f := range followers {
		s.run(f)
	}
	s.run(s.sweepLoop)
	return s, nil
}

func (s *Set) run(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Close stops following the sources. The set keeps answering with what
// it holds.
func (s *Set) Close() {
	s.cancel()
	s.wg.Wait()
}

// Revoked reports whether the token of issuer with id tokenID (its jti;
// "" for none), issued at issuedAt (its iat; the zero time for none) to
// clientID was revoked: by its id, or by a revocation of its client that
// covers issuedAt. It does not allocate, and a nil set revokes nothing.
func (s *Set) Revoked(issuer, tokenID, clientID string, issuedAt time.Time) bool {
	if s == nil {
		return false
	}
	if tokenID != "" && s.tokens.count.Load() != 0 && s.tokens.has(s.tokens.hash(issuer, tokenID)) {
		return true
	}
	return s.clients.revoked(issuer, clientID, issuedAt.Unix(), !issuedAt.IsZero())
}

// Loaded reports whether every source has been read in full at least
// once: until then, a token cannot be known not to be revoked.
func (s *Set) Loaded() bool { return s == nil || s.loaded.Load() }

// Add records revocations, as a source does, and fails naming the
// invalid ones, recording the others. Revocations already expired are
// ignored.
func (s *Set) Add(rs ...Revocation) error {
	var errs []error
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		s.add(r)
	}
	return errors.Join(errs...)
}

// add records a valid revocation and reports whether it was news.
func (s *Set) add(r Revocation) bool {
	exp := ceilUnix(r.Expires)
	if exp <= s.cfg.now().Unix() {
		return false
	}
	if r.IsClient() {
		return s.clients.add(clientKey{r.Issuer, r.ClientID}, clientEntry{before: ceilUnix(r.Before), exp: exp})
	}
	return s.tokens.add(s.tokens.hash(r.Issuer, r.TokenID), exp)
}

// Len returns the number of revocations held: tokens and clients.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return int(s.tokens.count.Load()) + s.clients.len()
}

// Ready returns nil once every source has been read in full at least
// once, else an error naming the sources still loading and why their last
// attempt failed. A gateway reports itself not ready until then.
func (s *Set) Ready() error {
	if s.Loaded() {
		return nil
	}
	var waiting []string
	for _, src := range s.sources {
		if !src.loaded.Load() {
			waiting = append(waiting, src.describe("not loaded yet"))
		}
	}
	return errors.New("revocations: " + strings.Join(waiting, "; "))
}

// WaitReady waits until [Set.Ready] returns nil or ctx is done.
func (s *Set) WaitReady(ctx context.Context) error {
	for _, src := range s.sources {
		select {
		case <-src.loadedCh:
		case <-ctx.Done():
			if err := s.Ready(); err != nil {
				return fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil
		}
	}
	return nil
}

// Fresh reports whether [Set.Err] is nil: every source is in sync and was
// heard from within the staleness, and the set is within its bound.
func (s *Set) Fresh() bool { return s.Err() == nil }

// Err returns nil while the set is fresh, else why not: a source not heard
// from for longer than the staleness (WithStaleness) and its last error,
// a source catching up after reconnecting, or more revocations than the
// bound (WithMaxEntries). Revocations made meanwhile may be missing:
// methods that must not run on stale revocations refuse to.
func (s *Set) Err() error {
	if s == nil {
		return nil
	}
	var problems []string
	now := s.cfg.now()
	for _, src := range s.sources {
		switch {
		case !src.synced.Load():
			problems = append(problems, src.describe("syncing"))
		case now.Sub(time.Unix(0, src.contact.Load())) > s.cfg.staleness:
			age := now.Sub(time.Unix(0, src.contact.Load())).Round(time.Millisecond)
			problems = append(problems, src.describe(fmt.Sprintf("no answer for %v (staleness %v)", age, s.cfg.staleness)))
		}
	}
	if n := s.Len(); n > s.cfg.maxEntries {
		problems = append(problems, fmt.Sprintf("%d revocations, more than the bound of %d", n, s.cfg.maxEntries))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("revocations stale: " + strings.Join(problems, "; "))
}

// sweepLoop drops expired revocations every sweep interval.
func (s *Set) sweepLoop() {
	t := time.NewTicker(s.cfg.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep drops the revocations expired now and returns how many.
func (s *Set) sweep() int {
	now := s.cfg.now().Unix()
	return s.tokens.sweep(now) + s.clients.sweep(now)
}
