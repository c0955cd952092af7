package issuer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
)

// The paths of revocation, after the path of the issuer URL: the token
// revocation endpoint (RFC 7009) and the feed gateways follow.
const (
	RevocationPath     = "/oauth2/revoke"
	RevocationFeedPath = revocation.FeedPath
)

// DefaultRevocationPollInterval is how often the issuer reads what
// commands appended to the revocation file.
const DefaultRevocationPollInterval = 250 * time.Millisecond

// RevocationURL returns the URL of the token revocation endpoint.
func (s *Server) RevocationURL() string { return s.issuer + RevocationPath }

// RevocationFeedURL returns the URL of the revocation feed.
func (s *Server) RevocationFeedURL() string { return s.issuer + RevocationFeedPath }

// revocations is the revocation state of a server.
type revocations struct {
	file  *revocationFile
	feed  *revocation.Feed
	store *revocation.Redis // nil without Redis
	// set holds what the file revoked, for the introspection endpoint.
	set *revocation.Set

	mu        sync.Mutex
	pending   []revocation.Revocation // not yet published to the store
	clients   map[string]int64        // client → latest revocation time (s, rounded up)
	readError string                  // the last error reading the file, logged once
	failing   bool                    // publishing fails, logged once

	own  atomic.Pointer[ownVerifier]
	done chan struct{}
}

// ownVerifier verifies the issuer's own tokens with the key set etag.
type ownVerifier struct {
	etag string
	v    *token.Verifier
}

func (s *Server) initRevocations() error {
	feed, err := revocation.NewFeed(s.issuer, revocation.WithFeedClock(s.cfg.now))
	if err != nil {
		return err
	}
	set, err := revocation.New(context.Background(), revocation.WithClock(s.cfg.now))
	if err != nil {
		return err
	}
	s.rev = &revocations{
		file:    &revocationFile{path: RevocationsPath(s.registryPath)},
		feed:    feed,
		set:     set,
		store:   s.cfg.revocationStore,
		clients: map[string]int64{},
		done:    make(chan struct{}),
	}
	if err := s.ingestRevocations(); err != nil {
		set.Close()
		return err
	}
	if s.cfg.revocationPoll > 0 {
		go s.pollRevocations(s.cfg.revocationPoll)
	} else {
		close(s.rev.done)
	}
	return nil
}

// pollRevocations reads the revocation file every interval until Close,
// and retries publishing what Redis refused.
func (s *Server) pollRevocations(interval time.Duration) {
	defer close(s.rev.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.ingestRevocations()
		}
	}
}

// ingestRevocations reads what the revocation file gained, serves it in
// the feed, publishes it, and reloads the registry after a client
// revocation, so that the client gets no new token.
func (s *Server) ingestRevocations() error {
	rv := s.rev
	rs, bad, err := rv.file.readNew(s.issuer)
	rv.mu.Lock()
	if err != nil {
		if msg := err.Error(); msg != rv.readError {
			rv.readError = msg
			s.logger().Error("issuer: revocations not read", "path", rv.file.path, "error", err)
		}
		rv.mu.Unlock()
		return err
	}
	rv.readError = ""
	clients := s.noteClients(rs)
	if rv.store != nil {
		rv.pending = append(rv.pending, rs...)
	}
	rv.mu.Unlock()
	if bad > 0 {
		s.logger().Warn("issuer: ignored lines of the revocation file that are not revocations", "path", rv.file.path, "lines", bad)
	}
	if len(rs) > 0 {
		if err := rv.set.Add(rs...); err != nil {
			s.logger().Error("issuer: revocations not held for introspection", "error", err)
		}
		if err := rv.feed.Add(rs...); err != nil {
			s.logger().Error("issuer: revocations not served", "error", err)
		}
		if clients {
			s.reloadRegistry(false)
		}
		s.logger().Info("issuer: revocations read", "revocations", len(rs), "path", rv.file.path)
	}
	s.publishPending()
	return nil
}

// noteClients records the client revocations among rs, forgetting those
// past the maximum token lifetime, and reports whether there were any.
// The caller holds rev.mu.
func (s *Server) noteClients(rs []revocation.Revocation) bool {
	rv := s.rev
	changed := false
	for _, r := range rs {
		if !r.IsClient() {
			continue
		}
		if !changed {
			changed = true
			now := s.cfg.now()
			for id, before := range rv.clients {
				if !time.Unix(before, 0).Add(s.cfg.maxLifetime).After(now) {
					delete(rv.clients, id)
				}
			}
		}
		rv.clients[r.ClientID] = max(rv.clients[r.ClientID], r.ToWire().Before)
	}
	return changed
}

// publishPending publishes to Redis what it has not taken yet, dropping
// what has expired meanwhile; what fails is kept for the next attempt.
func (s *Server) publishPending() {
	rv := s.rev
	rv.mu.Lock()
	pending := rv.pending
	rv.pending = nil
	rv.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	now := s.cfg.now()
	live := pending[:0]
	for _, r := range pending {
		if r.Expires.After(now) {
			live = append(live, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rv.store.Publish(ctx, live...)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if err != nil {
		rv.pending = append(live, rv.pending...)
		if !rv.failing {
			rv.failing = true
			s.logger().Error("issuer: revocations not published to Redis; retrying", "revocations", len(live), "error", err)
		}
		return
	}
	if rv.failing {
		rv.failing = false
		s.logger().Info("issuer: revocations published to Redis again")
	}
}

// revokedUntil returns how long a token of client minted now would be
// born revoked: until the second after the client's latest revocation
// ends, as iat counts whole seconds.
func (s *Server) revokedUntil(client string, now time.Time) time.Duration {
	s.rev.mu.Lock()
	before, ok := s.rev.clients[client]
	s.rev.mu.Unlock()
	if !ok || now.Unix() >= before {
		return 0
	}
	return time.Unix(before, 0).Sub(now)
}

// revoke records a revocation in the revocation file and serves it at
// once.
func (s *Server) revoke(r revocation.Revocation) error {
	if err := appendRevocations(s.rev.file.path, s.cfg.now(), r.ToWire()); err != nil {
		return err
	}
	return s.ingestRevocations()
}

// serveRevoke is the token revocation endpoint of RFC 7009: a client,
// authenticated as at the token endpoint, revokes a token issued to it.
// It answers 200 for a token that is not valid, or not the issuer's (RFC
// 7009 §2.2): there is nothing to revoke.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revokeRequest(w, r); err != nil {
		err.write(w, s.issuer)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revokeRequest(w http.ResponseWriter, r *http.Request) *oauthError {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return &oauthError{status: http.StatusMethodNotAllowed, code: codeInvalidRequest, description: "the revocation endpoint accepts only POST"}
	}
	form, oerr := readForm(w, r)
	if oerr != nil {
		return oerr
	}
	cr, oerr := s.credentials(r, form)
	if oerr != nil {
		return oerr
	}
	raw := form.Get("token")
	if raw == "" {
		return errRequest("missing token")
	}
	// token_type_hint may say access_token or refresh_token, or anything:
	// RFC 7009 §2.1 has the server look beyond the hint, and access
	// tokens are all there is.
	c, oerr := s.authenticateWith(r, cr)
	if oerr != nil {
		return oerr
	}
	p, err := s.verifyOwn(r.Context(), raw)
	if err != nil || p.TokenID == "" {
		// Not a valid token of this issuer (expired ones included):
		// nothing to revoke.
		return nil
	}
	if p.ClientID != c.id {
		// RFC 7009 §2.1: a client revokes only its own tokens. The
		// client holds the token, whose client_id it can read anyway.
		return &oauthError{status: http.StatusBadRequest, code: codeUnauthorizedClient, description: "the token was issued to another client"}
	}
	rev := revocation.Revocation{Issuer: s.issuer, TokenID: p.TokenID, Expires: p.ExpiresAt.Add(RetentionMargin)}
	if err := s.revoke(rev); err != nil {
		s.logger().Error("issuer: revocation not recorded", "client_id", c.id, "jti", p.TokenID, "error", err)
		return &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: "the revocation could not be recorded; retry", retryAfter: time.Second}
	}
	s.logger().Info("issuer: token revoked", "client_id", c.id, "jti", p.TokenID)
	return nil
}

// verifyOwn verifies a token of this issuer against its current keys,
// those retired but still published included.
func (s *Server) verifyOwn(ctx context.Context, raw string) (*token.Principal, error) {
	view, err := s.view()
	if err != nil {
		return nil, err
	}
	ov := s.rev.own.Load()
	if ov == nil || ov.etag != view.etag {
		v, err := token.NewVerifier(context.Background(), []token.Issuer{{
			Issuer: s.issuer, Audiences: []string{s.audience}, JWKS: view.jwks, Type: "at+jwt",
		}}, token.WithClock(token.ClockFunc(s.cfg.now)), token.WithCacheSize(0), token.WithMaxAge(0))
		if err != nil {
			return nil, err
		}
		ov = &ownVerifier{etag: view.etag, v: v}
		if old := s.rev.own.Swap(ov); old != nil {
			old.v.Close()
		}
	}
	p, err := ov.v.Verify(ctx, raw)
	if err != nil {
		var te *token.Error
		if !errors.As(err, &te) {
			s.logger().Error("issuer: verify a token to revoke", slog.Any("error", err))
		}
		return nil, err
	}
	return p, nil
}
