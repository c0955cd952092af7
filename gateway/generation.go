package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/internaltoken"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/telemetry"
	"github.com/portcullis/portcullis/gateway/token"
)

// A generation is everything one configuration and its descriptors decide:
// the catalog, the routes and their handlers, the verifier of its issuers,
// the limits, the edge. It is built whole beside the one serving, and never
// changes once it serves. Calls finish on the generation they started on;
// a generation replaced is closed when its last call ends.
//
// Parts whose settings a new configuration leaves alone are carried over
// rather than built again, so that what they hold survives a reload: the
// verifier (its verified-token cache and key fetchers) with the
// revocations, the rate limit store (every caller's budget), the minter
// (its key), and each backend (its connections).
type generation struct {
	number    uint64
	gw        *Gateway // for the health checker
	cfg       *config.Config
	logger    *slog.Logger
	telemetry *telemetry.Telemetry // the gateway's, shared by every generation
	catalog   *catalog.Catalog
	verifier  *token.Verifier // nil when no issuer is configured
	store     ratelimit.Store
	backends  []*forward.Backend
	byRoute   map[string]*forward.Backend // by routed service, for /readyz
	handler   http.Handler
	services  map[string]*forward.Service         // the routed services, by full name, for the gRPC listener
	grpcEdge  func(*http.Request) context.Context // the edge of the gRPC listener's calls
	graph     http.Handler                        // the permission graph of the admin listener
	closers   []func() error                      // of the parts this generation alone owns
	stop      chan struct{}                       // the gateway's: closed at the drain deadline

	minter      *internaltoken.Minter // nil when no route has identity internal
	revocations *revocation.Set       // nil without issuers or with revocation.source none

	reflected map[string]reflected // what the backends of routes with descriptors reflection gave, by reflectionKey

	parts []*part     // the parts it may share with other generations
	prev  *generation // while it is built: the generation whose parts it may carry over

	inflight  atomic.Int64 // calls being served
	retired   atomic.Bool  // replaced: closed once inflight is 0
	closeOnce sync.Once
	closeErr  error
}

// ready reports whether the generation can verify tokens: every trusted
// issuer's keys were fetched at least once, and the revocations read in
// full.
func (g *generation) ready() error {
	if g.verifier == nil {
		return nil
	}
	return errors.Join(g.verifier.Ready(), g.revocations.Ready())
}

// close releases what the generation alone owns, and its share of the
// rest, once.
func (g *generation) close() error {
	g.closeOnce.Do(func() {
		var errs []error
		for i := len(g.closers) - 1; i >= 0; i-- {
			errs = append(errs, g.closers[i]())
		}
		for i := len(g.parts) - 1; i >= 0; i-- {
			errs = append(errs, g.parts[i].release())
		}
		g.closers, g.parts = nil, nil
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}

// release ends a call served by g; the last call of a retired generation
// closes it.
func (g *generation) release() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.gw.closeRetired(g)
	}
}

// A part is something generations can share: it is closed when the last
// generation holding it closes.
type part struct {
	key     any // the settings that decide it
	value   any
	refs    atomic.Int32
	closers []func() error
}

func (p *part) release() error {
	if p.refs.Add(-1) != 0 {
		return nil
	}
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i]())
	}
	return errors.Join(errs...)
}

// carry sets *field to the value of the part the generation before holds
// under the same kind and settings, or else to what build makes, which
// becomes a part: the closers build adds are its own.
func carry[T any](g *generation, kind string, key any, field *T, build func() error) error {
	if g.prev != nil {
		for _, p := range g.prev.parts {
			if k, ok := p.key.(partKey); ok && k.kind == kind && reflect.DeepEqual(k.settings, key) {
				p.refs.Add(1)
				g.parts = append(g.parts, p)
				*field = p.value.(T)
				return nil
			}
		}
	}
	mark := len(g.closers)
	if err := build(); err != nil {
		return err
	}
	p := &part{key: partKey{kind, key}, value: *field, closers: slices.Clone(g.closers[mark:])}
	p.refs.Store(1)
	g.closers = g.closers[:mark]
	g.parts = append(g.parts, p)
	return nil
}

type partKey struct {
	kind     string
	settings any
}

// auth is the verifier with the revocations it checks.
type auth struct {
	verifier    *token.Verifier
	revocations *revocation.Set
}

// carryAuth builds the revocations and the verifier, or carries them over
// when the issuers, tokens and revocation settings are those of the
// generation before, and so are the permissions that scopes map to and,
// for revocations read from Redis, what its CA file holds. (The verifier
// follows its issuers' key set files itself.)
func (g *generation) carryAuth(ctx context.Context, o *options) error {
	key := struct {
		Issuers    []config.Issuer
		Tokens     config.Tokens
		Revocation config.Revocation
		Scopes     []string
		RedisCA    [][sha256.Size]byte
	}{g.cfg.Issuers, g.cfg.Tokens, g.cfg.Revocation, g.scopePermissions(), nil}
	if g.cfg.Revocation.Source == "redis" {
		key.RedisCA = contents(g.cfg.Revocation.Redis.TLSCAFile)
	}
	var a auth
	err := carry(g, "auth", key, &a, func() error {
		if err := g.newRevocations(ctx, o); err != nil {
			return fmt.Errorf("revocation: %w", err)
		}
		if err := g.newVerifier(ctx, o); err != nil {
			return err
		}
		a = auth{verifier: g.verifier, revocations: g.revocations}
		return nil
	})
	g.verifier, g.revocations = a.verifier, a.revocations
	return err
}

// scopePermissions lists the catalog's permissions with their masks when
// an issuer maps scopes to them: a verifier that maps scopes stays valid
// only while they do not change.
func (g *generation) scopePermissions() []string {
	scopes := false
	for _, is := range g.cfg.Issuers {
		scopes = scopes || is.Permissions.FromScopes()
	}
	if !scopes {
		return nil
	}
	var out []string
	for _, d := range g.catalog.Domains() {
		for _, p := range d.Permissions {
			out = append(out, fmt.Sprintf("%s=%d", p, p.Mask))
		}
	}
	return out
}

// carryStore builds the rate limit store, or carries it over, with every
// caller's budget, when where it keeps them is unchanged: rate_limit's
// store, redis (and what its CA file holds) and max_keys. The limits themselves (default, tiers) and the
// trusted proxies are the limiter's, built anew: a changed limit applies to
// the budgets already spent.
func (g *generation) carryStore() error {
	r := g.cfg.RateLimit
	key := struct {
		Store   string
		MaxKeys int
		Redis   any
	}{Store: r.Store, MaxKeys: r.MaxKeys}
	if r.Store == "redis" {
		key.Redis = redisSettings(r.Redis)
	}
	return carry(g, "store", key, &g.store, func() error {
		var err error
		g.store, err = g.newStore(g.cfg.RateLimit)
		return err
	})
}

// carryMinter builds the minter of internal tokens, or carries it over,
// with its key, when internal_tokens is unchanged and still needed.
func (g *generation) carryMinter() error {
	needed := false
	for _, r := range g.cfg.Routes {
		needed = needed || r.Identity == config.IdentityInternal
	}
	var settings any
	if t := g.cfg.InternalTokens; t != nil && needed {
		settings = *t
	}
	return carry(g, "minter", settings, &g.minter, g.newMinter)
}

// carryBackend builds the client of a route's backend, or carries it over,
// with its connections, when its endpoints, protocol, balancer, TLS files
// (the CA file's content; client certificates follow their files anyway)
// and the health settings (probes, ejection, retries) are unchanged.
func (g *generation) carryBackend(route config.Route, key string) (*forward.Backend, error) {
	settings := struct {
		Key    string
		Health config.Health
		CA     [][sha256.Size]byte
	}{key, g.cfg.Health, contents(route.CAFile)}
	var b *forward.Backend
	err := carry(g, "backend", settings, &b, func() error {
		var err error
		if b, err = g.newBackend(route); err == nil {
			g.closers = append(g.closers, b.Close)
		}
		return err
	})
	return b, err
}

// redisSettings is, in the key of a part that talks to the Redis of r,
// its settings and what its CA file holds: a new CA makes a new client.
func redisSettings(r config.Redis) any {
	return struct {
		config.Redis
		CA [][sha256.Size]byte
	}{r, contents(r.TLSCAFile)}
}

// contents returns what each named file holds, as a hash, for the key of
// a part built from the files: the part is carried over only while they
// hold what they held. An empty name, or a file that cannot be read, gives
// a zero hash.
func contents(files ...string) [][sha256.Size]byte {
	out := make([][sha256.Size]byte, len(files))
	for i, name := range files {
		if name == "" {
			continue
		}
		if data, err := os.ReadFile(name); err == nil {
			out[i] = sha256.Sum256(data)
		}
	}
	return out
}

// generations is the gateway's generations: the one serving new calls, and
// those replaced but still finishing calls.
type generations struct {
	gen    atomic.Pointer[generation]
	mu     sync.Mutex
	live   map[*generation]struct{} // every generation not yet closed but the current one
	closed bool
}

func (gs *generations) current() *generation { return gs.gen.Load() }

// acquire returns the generation serving new calls, counted as serving one
// more until release.
func (gs *generations) acquire() *generation {
	for {
		gen := gs.gen.Load()
		gen.inflight.Add(1)
		if gs.gen.Load() == gen {
			return gen
		}
		gen.release() // replaced meanwhile: serve on the new one
	}
}

// serveCurrent serves a request on the generation serving new calls, to
// the end, even if another replaces it meanwhile.
func (g *Gateway) serveCurrent(w http.ResponseWriter, r *http.Request) {
	reserveStack()
	gen := g.acquire()
	defer gen.release()
	gen.handler.ServeHTTP(w, r)
}

// commit makes gen the generation serving new calls; the one it replaces
// closes when its last call ends.
func (g *Gateway) commit(gen *generation) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = gen.close()
		return
	}
	old := g.gen.Swap(gen)
	if old != nil {
		if g.live == nil {
			g.live = make(map[*generation]struct{})
		}
		g.live[old] = struct{}{}
	}
	g.mu.Unlock()
	if old != nil {
		old.retired.Store(true)
		if old.inflight.Load() == 0 {
			g.closeRetired(old)
		}
	}
}

// closeRetired closes a replaced generation whose calls all ended.
func (g *Gateway) closeRetired(gen *generation) {
	g.mu.Lock()
	delete(g.live, gen)
	g.mu.Unlock()
	if err := gen.close(); err != nil {
		g.logger.Warn("closing a replaced configuration generation", "generation", gen.number, "error", err)
	}
}

// closeGenerations closes every generation, the current one last.
func (g *Gateway) closeGenerations() error {
	g.mu.Lock()
	g.closed = true
	old := make([]*generation, 0, len(g.live))
	for gen := range g.live {
		old = append(old, gen)
	}
	g.live = nil
	g.mu.Unlock()
	var errs []error
	for _, gen := range old {
		errs = append(errs, gen.close())
	}
	if gen := g.gen.Load(); gen != nil {
		errs = append(errs, gen.close())
	}
	return errors.Join(errs...)
}
