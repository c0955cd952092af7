package issuer

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/token"
)

// Config is what an issuer must be told. Tuning goes in Options.
type Config struct {
	// IssuerURL identifies the issuer: the iss claim of its tokens, and
	// the base of its endpoints. An http or https URL without query or
	// fragment, such as "https://auth.example.com". Clients and verifiers
	// must reach the issuer at this URL.
	IssuerURL string
	// Audience is the aud claim of every token: the resource server that
	// accepts them, such as the gateway.
	Audience string
	// KeyDir holds the signing keys. It is created (mode 0700) with a key
	// of Algorithm if it is missing or holds no key.
	KeyDir string
	// Algorithm is the algorithm of a generated first key: ES256 (the
	// default), RS256 or EdDSA. Existing keys keep their own.
	Algorithm string
	// RegistryPath is the client registry, a YAML file. A missing file is
	// an empty registry, until the file appears.
	RegistryPath string
	// DefaultLifetime is the lifetime of tokens for clients that set none
	// (default 1h).
	DefaultLifetime time.Duration
}

// DefaultLifetime is the default token lifetime.
const DefaultLifetime = time.Hour

// The paths the issuer serves, after the path of its issuer URL.
const (
	TokenPath = "/oauth2/token"
	JWKSPath  = "/.well-known/jwks.json"
	// OpenIDConfigurationPath follows the issuer's path; the RFC 8414
	// metadata path, /.well-known/oauth-authorization-server, precedes it.
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	MetadataPath            = "/.well-known/oauth-authorization-server"
)

// Server is an OAuth 2.0 authorization server for the client credentials
// grant (RFC 6749 §4.4) that issues JWT access tokens (RFC 9068) carrying
// permission masks. Its methods are safe for concurrent use.
type Server struct {
	cfg          *config
	cat          *catalog.Catalog
	issuer       string // the issuer URL, without a trailing slash
	audience     string
	keyDir       string
	registryPath string
	lifetime     time.Duration
	metadata     []byte
	handler      http.Handler

	keys     atomic.Pointer[keyRing]
	registry atomic.Pointer[registry]
	rev      *revocations

	dummyHash string // verified for unknown clients, so that they cost what known ones do
	cache     *verifyCache
	byClient  *failureLimiter
	byAddr    *failureLimiter
	hashSlots chan struct{}

	adminVerifier *token.Verifier // of the administration service, or nil
	exchange      *exchange       // the token exchange grant, or nil

	reloadMu     sync.Mutex // serializes reloads
	keyStamp     string
	registryStat os.FileInfo // nil: missing

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var safePath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)*$`)

// New starts an issuer: it reads (or creates) the signing keys in
// cfg.KeyDir and the client registry at cfg.RegistryPath, resolving each
// client's grants through cat, and fails naming every problem. Unless
// polling is turned off ([WithReloadInterval]), it then watches both for
// changes until [Server.Close]. Serve [Server.Handler].
func New(cfg Config, cat *catalog.Catalog, opts ...Option) (*Server, error) {
	c := newConfig(opts)
	if cat == nil {
		return nil, errors.New("issuer: no catalog")
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = ES256
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = DefaultLifetime
	}
	issuer, err := parseIssuerURL(cfg.IssuerURL)
	if err != nil {
		return nil, err
	}
	var errs []error
	switch cfg.Algorithm {
	case ES256, RS256, EdDSA:
	default:
		errs = append(errs, unsupportedAlg(cfg.Algorithm))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("no audience"))
	}
	if cfg.RegistryPath == "" {
		errs = append(errs, errors.New("no registry path"))
	}
	if c.maxLifetime < time.Second {
		errs = append(errs, fmt.Errorf("maximum token lifetime %s is below 1s", c.maxLifetime))
	}
	if cfg.DefaultLifetime < time.Second || cfg.DefaultLifetime > c.maxLifetime {
		errs = append(errs, fmt.Errorf("default token lifetime %s is not within [1s, %s]", cfg.DefaultLifetime, c.maxLifetime))
	}
	if c.reloadInterval < 0 || c.reloadInterval > maxReloadInterval {
		errs = append(errs, fmt.Errorf("reload interval %s is not within [0, %s]", c.reloadInterval, maxReloadInterval))
	}
	if c.failureBurst < 1 || c.failureInterval <= 0 {
		errs = append(errs, fmt.Errorf("failure limit: burst %d and interval %s must be positive", c.failureBurst, c.failureInterval))
	}
	if c.maxConcurrentHashes < 1 {
		errs = append(errs, fmt.Errorf("max concurrent verifications %d is below 1", c.maxConcurrentHashes))
	}
	if c.revocationPoll < 0 || c.revocationPoll > maxReloadInterval {
		errs = append(errs, fmt.Errorf("revocation poll interval %s is not within [0, %s]", c.revocationPoll, maxReloadInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	s := &Server{
		cfg:          c,
		cat:          cat,
		issuer:       issuer,
		audience:     cfg.Audience,
		keyDir:       cfg.KeyDir,
		registryPath: cfg.RegistryPath,
		lifetime:     cfg.DefaultLifetime,
		cache:        newVerifyCache(c.cacheTTL),
		byClient:     newFailureLimiter(c.failureBurst, c.failureInterval),
		byAddr:       newFailureLimiter(c.failureBurst, c.failureInterval),
		hashSlots:    make(chan struct{}, c.maxConcurrentHashes),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if s.dummyHash, err = c.hasher.Hash([]byte(newSecret())); err != nil {
		return nil, fmt.Errorf("issuer: hash: %w", err)
	}
	if err := s.initKeys(cfg.Algorithm); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if err := s.reloadRegistry(true); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if c.exchange != nil {
		if s.exchange, err = newExchange(c.exchange, cat, token.WithClock(token.ClockFunc(c.now)), token.WithLogger(c.logger)); err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	started := false
	defer func() {
		if !started && s.exchange != nil { // New failed after starting the verifier
			s.exchange.verifier.Close()
		}
	}()
	if err := s.initRevocations(); err != nil {
		return nil, fmt.Errorf("issuer: revocations: %w", err)
	}
	if s.metadata, err = s.buildMetadata(); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	mux, path := s.routes()
	s.handler = mux
	if c.cors != nil {
		co, err := cors.New(*c.cors, nil)
		if err != nil {
			return nil, fmt.Errorf("issuer: cors: %w", err)
		}
		s.handler = co.Wrap(s.handler)
	}
	if c.admin != nil {
		if err := s.mountAdmin(mux, path, c.admin); err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	if c.reloadInterval > 0 {
		go s.poll(c.reloadInterval)
	} else {
		close(s.done)
	}
	started = true
	return s, nil
}

// parseIssuerURL checks an issuer URL and returns it without a trailing
// slash.
func parseIssuerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", errors.New("issuer: no issuer URL")
	case err != nil:
		return "", fmt.Errorf("issuer: issuer URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.User != nil, u.RawQuery != "", u.Fragment != "", u.ForceQuery:
		return "", fmt.Errorf("issuer: issuer URL %q is not an http or https URL with a host and no user, query or fragment", raw)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if !safePath.MatchString(path) {
		return "", fmt.Errorf("issuer: issuer URL path %q holds characters other than letters, digits and ._~-", path)
	}
	return u.Scheme + "://" + u.Host + path, nil
}

// Issuer returns the issuer URL, as in the iss claim.
func (s *Server) Issuer() string { return s.issuer }

// TokenURL returns the URL of the token endpoint.
func (s *Server) TokenURL() string { return s.issuer + TokenPath }

// JWKSURL returns the URL of the JWKS.
func (s *Server) JWKSURL() string { return s.issuer + JWKSPath }

// Handler returns the issuer's HTTP handler. It serves, under the path of
// the issuer URL: POST /oauth2/token, POST /oauth2/revoke (RFC 7009), GET
// /revocations (the revocation feed), GET /.well-known/jwks.json and GET
// /.well-known/openid-configuration; and GET
// /.well-known/oauth-authorization-server followed by that path (RFC 8414
// §3); with [WithAdmin], the client administration service under
// [AdminServicePath]. For an issuer URL without a path, mount it at the
// root.
func (s *Server) Handler() http.Handler { return s.handler }

// Reload re-reads the key directory and the client registry now, whether
// or not they changed, and what the revocation file gained; use it on
// SIGHUP. Either part that fails to load keeps its previous state, and
// the error says why. Polling ([WithReloadInterval],
// [WithRevocationPollInterval]) does the same for files that changed.
func (s *Server) Reload() error {
	return errors.Join(s.reloadKeys(true), s.reloadRegistry(true), s.ingestRevocations())
}

// Close stops watching for changes, and answers the followers of the
// revocation feed waiting for news. The handler keeps serving what was
// loaded last.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.rev != nil {
			// First: followers of the feed wait on it, and an HTTP server
			// draining in front of the issuer waits for them.
			s.rev.feed.Close()
		}
		if s.adminVerifier != nil {
			s.adminVerifier.Close()
		}
		if s.exchange != nil {
			s.exchange.verifier.Close()
		}
	})
	<-s.done
	if s.rev != nil {
		s.rev.feed.Close()
		<-s.rev.done
		s.rev.set.Close()
		if ov := s.rev.own.Load(); ov != nil {
			ov.v.Close()
		}
	}
	return nil
}

// poll reloads what changed, every interval, until Close.
func (s *Server) poll(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// Errors are logged once per change of the file, and the
			// previous state is kept.
			s.reloadKeys(false)
			s.reloadRegistry(false)
		}
	}
}

// reloadRegistry loads the registry if forced or if its file changed.
func (s *Server) reloadRegistry(force bool) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	fi, err := os.Stat(s.registryPath)
	if err != nil {
		fi = nil
	}
	if !force && sameFile(s.registryStat, fi) {
		return nil
	}
	s.registryStat = fi
	r, err := loadRegistry(s.registryPath, s.cat, s.cfg.maxLifetime)
	if err != nil {
		if s.registry.Load() != nil {
			s.cfg.logger.Error("issuer: registry not reloaded; keeping the previous one", "path", s.registryPath, "error", err)
		}
		return err
	}
	s.registry.Store(r)
	s.cfg.logger.Info("issuer: registry loaded", "path", s.registryPath, "clients", len(r.clients))
	return nil
}

// sameFile reports whether two stats of a file show the same contents: the
// same file, size and modification time, or both missing.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// dirStamp summarizes the key files of dir: names, sizes and times.
func dirStamp(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), keyFileExt) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

func (s *Server) logger() *slog.Logger { return s.cfg.logger }
