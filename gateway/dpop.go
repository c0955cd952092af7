package gateway

import (
	"crypto/rand"
	"fmt"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/dpop"
)

// carryDPoP returns the authorizer's option accepting DPoP-bound tokens,
// with the verifier of the dpop section; none when DPoP is disabled. The
// verifier is carried over from the generation before, with the proofs it
// has seen and its nonce key, when the dpop section and the Redis it uses
// (and what its CA file holds) are unchanged: a reload must not reopen a replay window.
func (g *generation) carryDPoP(c *chain) ([]authz.Option, error) {
	d := g.cfg.DPoP
	if !d.IsEnabled() {
		return nil, nil
	}
	key := struct {
		DPoP  config.DPoP
		Redis any
	}{DPoP: d}
	if d.Replay.Store == "redis" {
		key.Redis = redisSettings(g.cfg.RateLimit.Redis)
	}
	var v *dpop.Verifier
	if err := carry(g, "dpop", key, &v, func() (err error) {
		v, err = g.newDPoP()
		return err
	}); err != nil {
		return nil, err
	}
	c.dpop = true
	return []authz.Option{authz.WithDPoP(v)}, nil
}

// newDPoP builds the verifier of the dpop section.
func (g *generation) newDPoP() (*dpop.Verifier, error) {
	d := g.cfg.DPoP
	opts := []dpop.Option{
		dpop.WithWindow(d.MaxAge.Std(), d.Skew.Std()),
		dpop.WithAlgorithms(d.Algorithms...),
		dpop.WithMaxSize(d.MaxProofSize),
	}
	if d.Replay.Store == "redis" {
		// The Redis of rate_limit.redis, built as the rate limit store
		// builds its own. A failed replay check refuses the call.
		r := g.cfg.RateLimit.Redis
		client, err := newDecisionRedis(r)
		if err != nil {
			return nil, fmt.Errorf("dpop: rate_limit.redis: %w", err)
		}
		g.closers = append(g.closers, client.Close)
		store, err := dpop.NewRedis(client, d.Replay.Prefix, r.Timeout.Std())
		if err != nil {
			return nil, err
		}
		opts = append(opts, dpop.WithReplayStore(store))
	} else {
		opts = append(opts, dpop.WithReplayStore(dpop.NewMemory(d.Replay.MaxEntries)))
	}
	if d.Nonce.Required {
		key := d.Nonce.Secret
		if key == nil {
			key = make([]byte, 32)
			rand.Read(key)
		}
		n, err := dpop.NewNonces(key, d.Nonce.Rotation.Std())
		if err != nil {
			return nil, err
		}
		opts = append(opts, dpop.WithNonces(n))
	}
	v, err := dpop.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return v, nil
}
