package config

import (
	"slices"
	"time"

	"github.com/portcullis/portcullis/gateway/dpop"
)

// DPoP configures DPoP-bound tokens (RFC 9449): tokens sent as
// "Authorization: DPoP <token>" with a proof, signed by the key the token
// is bound to, made for the one call.
type DPoP struct {
	// Enabled accepts DPoP-bound tokens. Default true; see
	// [DPoP.IsEnabled]. When false, a token bound to a DPoP key is
	// refused.
	Enabled *bool `json:"enabled,omitempty"`
	// MaxAge is how old a proof's iat may be. Default 60s.
	MaxAge Duration `json:"max_age,omitempty"`
	// Skew is how far in the future a proof's iat may be, for clocks
	// that differ. Default 5s.
	Skew Duration `json:"skew,omitempty"`
	// Algorithms a proof may be signed with. Default ES256, ES384,
	// EdDSA, RS256 and PS256; any of ES256, ES384, ES512, EdDSA, RS256,
	// RS384, RS512, PS256, PS384 and PS512.
	Algorithms []string `json:"algorithms,omitempty"`
	// MaxProofSize bounds a proof in bytes. Default 8192.
	MaxProofSize int `json:"max_proof_size,omitempty"`
	// Replay says where proofs are remembered, so each is accepted once.
	Replay DPoPReplay `json:"replay"`
	// Nonce makes proofs carry a server nonce (RFC 9449 §8).
	Nonce DPoPNonce `json:"nonce"`
}

// DPoPReplay is where seen proofs are remembered, for max_age + skew.
type DPoPReplay struct {
	// Store is "memory" (default: each replica remembers what it saw) or
	// "redis": the Redis of rate_limit.redis (its address, password, db
	// and timeout), shared by every replica, so that a proof replayed to
	// another replica is refused too.
	Store string `json:"store,omitempty"`
	// Prefix starts the Redis keys. Default "portcullis:dpop:".
	Prefix string `json:"prefix,omitempty"`
	// MaxEntries bounds the memory store; past it, new proofs are refused
	// until old ones expire. Default 1048576.
	MaxEntries int `json:"max_entries,omitempty"`
}

// DPoPNonce configures server nonces (RFC 9449 §8): a proof without the
// current nonce is refused with use_dpop_nonce and a DPoP-Nonce header
// holding one.
type DPoPNonce struct {
	// Required makes every proof carry a nonce. Default false.
	Required bool `json:"required,omitempty"`
	// Rotation is how often the nonce changes; one stays valid for two
	// periods. Default 5m; at least 1s.
	Rotation Duration `json:"rotation,omitempty"`
	// SecretEnv names the environment variable holding the key nonces
	// are made with (at least 32 bytes), the same for every replica so
	// that they accept each other's nonces. Unset: a random key per
	// process, enough for one replica.
	SecretEnv string `json:"secret_env,omitempty"`

	// Secret is read from SecretEnv. Never in the file.
	Secret []byte `json:"-"`
}

// IsEnabled reports whether DPoP-bound tokens are accepted.
func (d *DPoP) IsEnabled() bool { return d.Enabled == nil || *d.Enabled }

func (d *DPoP) setDefaults() {
	setDuration(&d.MaxAge, dpop.DefaultMaxAge)
	setDuration(&d.Skew, dpop.DefaultSkew)
	if len(d.Algorithms) == 0 {
		d.Algorithms = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}
	}
	setInt(&d.MaxProofSize, dpop.DefaultMaxSize)
	setString(&d.Replay.Store, "memory")
	setString(&d.Replay.Prefix, "portcullis:dpop:")
	setInt(&d.Replay.MaxEntries, 1<<20)
	setDuration(&d.Nonce.Rotation, 5*time.Minute)
}

func (d *DPoP) validate(v *validator) {
	v.positive("dpop.max_age", d.MaxAge)
	if d.Skew < 0 {
		v.add("dpop.skew", "must not be negative")
	}
	for i, a := range d.Algorithms {
		if !slices.Contains(dpop.Algorithms(), a) {
			v.add("dpop.algorithms", "algorithms[%d] %q is not an asymmetric algorithm of ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512", i, a)
		}
	}
	if d.MaxProofSize < 256 {
		v.add("dpop.max_proof_size", "must be at least 256")
	}
	switch d.Replay.Store {
	case "memory", "redis":
	default:
		v.add("dpop.replay.store", "%q is not memory or redis", d.Replay.Store)
	}
	if d.Replay.Prefix == "" {
		v.add("dpop.replay.prefix", "must not be empty")
	}
	if d.Replay.MaxEntries < 64 {
		v.add("dpop.replay.max_entries", "must be at least 64")
	}
	v.atLeast("dpop.nonce.rotation", d.Nonce.Rotation, time.Second)
	if env := d.Nonce.SecretEnv; env != "" {
		s, ok := v.lookupEnv(env)
		switch {
		case !ok:
			v.add("dpop.nonce.secret_env", "environment variable %s is not set", env)
		case len(s) < 32:
			v.add("dpop.nonce.secret_env", "environment variable %s holds %d bytes, fewer than 32", env, len(s))
		default:
			d.Nonce.Secret = []byte(s)
		}
	}
}
