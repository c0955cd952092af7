package issuer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// keyRing is the keys loaded from the key directory. Which of them signs
// and which are published depends on the time; a keyView holds the answer
// until the next activation or expiry, so that the token endpoint and the
// JWKS read it without locks or allocation.
type keyRing struct {
	keys      []*signingKey // by activation, then kid
	retention time.Duration
	mu        sync.Mutex // serializes rebuilding the view
	view      atomic.Pointer[keyView]
}

// keyView is the state of a keyRing during [from, until).
type keyView struct {
	from, until time.Time
	active      *signingKey // nil: no key has activated yet
	jwks        []byte      // the JWKS document
	etag        string
}

var endOfTime = time.Unix(1<<62, 0)

func newKeyRing(keys []*signingKey, retention time.Duration) *keyRing {
	return &keyRing{keys: keys, retention: retention}
}

// at returns the view of the ring at now.
func (r *keyRing) at(now time.Time) (*keyView, error) {
	if v := r.view.Load(); v != nil && !now.Before(v.from) && now.Before(v.until) {
		return v, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.view.Load(); v != nil && !now.Before(v.from) && now.Before(v.until) {
		return v, nil
	}
	v, err := r.build(now)
	if err != nil {
		return nil, err
	}
	r.view.Store(v)
	return v, nil
}

func (r *keyRing) build(now time.Time) (*keyView, error) {
	v := &keyView{from: now, until: endOfTime}
	set := jwk.NewSet()
	for i, st := range keyStates(r.keys, now, r.retention) {
		switch st.State {
		case KeyPending:
			v.until = earlier(v.until, st.Activates)
		case KeyActive:
			v.active = r.keys[i]
		case KeyRetired:
			v.until = earlier(v.until, st.Expires)
		case KeyExpired:
			continue
		}
		if err := set.AddKey(r.keys[i].public); err != nil {
			return nil, err
		}
	}
	var err error
	if v.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	sum := sha256.Sum256(v.jwks)
	v.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	return v, nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// initKeys loads the key directory, generating a first key of alg when it
// holds none; one key must be active.
func (s *Server) initKeys(alg string) error {
	if err := ensureKeyDir(s.keyDir); err != nil {
		return err
	}
	keys, err := readKeyDir(s.keyDir)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		now := s.cfg.now()
		k, data, err := newSigningKey(alg, now, now)
		if err != nil {
			return err
		}
		k.path = filepath.Join(s.keyDir, k.kid+keyFileExt)
		if err := writeFileAtomic(k.path, data); err != nil {
			return err
		}
		s.logger().Info("issuer: generated a signing key", "kid", k.kid, "alg", alg, "path", k.path)
	}
	if err := s.reloadKeys(true); err != nil {
		return err
	}
	v, err := s.keys.Load().at(s.cfg.now())
	if err != nil {
		return err
	}
	if v.active == nil {
		return fmt.Errorf("key directory %s: no key is active yet", s.keyDir)
	}
	return nil
}

// reloadKeys loads the key directory if forced or if its key files
// changed. A directory that fails to load, or holds no key, leaves the
// previous keys in place.
func (s *Server) reloadKeys(force bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	stamp := dirStamp(s.keyDir)
	if !force && stamp == s.keyStamp {
		return nil
	}
	s.keyStamp = stamp
	keys, err := readKeyDir(s.keyDir)
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("key directory %s holds no key", s.keyDir)
	}
	if err != nil {
		if s.keys.Load() != nil {
			s.logger().Error("issuer: keys not reloaded; keeping the previous ones", "dir", s.keyDir, "error", err)
		}
		return err
	}
	ring := newKeyRing(keys, retention(s.cfg))
	if _, err := ring.at(s.cfg.now()); err != nil {
		return err
	}
	s.keys.Store(ring)
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.kid
	}
	s.logger().Info("issuer: keys loaded", "dir", s.keyDir, "kids", kids)
	return nil
}

// view returns the keys' view now.
func (s *Server) view() (*keyView, error) {
	r := s.keys.Load()
	if r == nil {
		return nil, errors.New("no keys")
	}
	return r.at(s.cfg.now())
}
