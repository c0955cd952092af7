package issuer

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// Client is a client of the registry as its operators see it: never its
// secret, nor the secret's hash.
type Client struct {
	// ID is the client_id, 1 to 128 letters, digits, '.', '_' or '-',
	// starting with a letter or digit.
	ID string
	// Grants names the permissions the client may ask for, such as
	// "LIC.READ_ORDERS". A token carries all of them unless the client asks
	// for fewer with the scope parameter.
	Grants []string
	// Tier is the client's tier, such as "free" or "pro", or "".
	Tier string
	// TokenLifetime is the lifetime of the client's tokens; 0 means the
	// issuer's default.
	TokenLifetime time.Duration
	// Introspect lets the client call the introspection endpoint (RFC
	// 7662): a resource server, such as a gateway, that learns from the
	// issuer whether a token is active. Other clients get 403 there.
	Introspect bool
	// Exchange lets the client exchange tokens of trusted external
	// issuers for tokens of this issuer (RFC 8693, [WithExchange]).
	Exchange bool
	// CertificateAuth is how the client authenticates with a TLS client
	// certificate instead of a secret (RFC 8705 §2); the zero value is a
	// client with a secret.
	CertificateAuth CertificateAuth
	// CertificateBoundTokens makes every token of the client bound to
	// its TLS client certificate (tls_client_certificate_bound_access_tokens):
	// a token request without one is refused.
	CertificateBoundTokens bool
}

// CertificateAuth is how a client authenticates with its TLS client
// certificate (RFC 8705 §2), with [WithMutualTLS]: by a certificate of the
// issuer's client CA that names exactly one of SubjectDN, SANURI and
// SANDNS (tls_client_auth), or by one of its registered Certificates
// (self_signed_tls_client_auth). Such a client has no secret.
type CertificateAuth struct {
	// SubjectDN is the subject the certificate must have, in RFC 4514
	// form as Go writes it ("CN=billing,O=Example"): compared exactly.
	SubjectDN string
	// SANURI is a URI subject alternative name the certificate must hold,
	// such as a SPIFFE ID.
	SANURI string
	// SANDNS is a DNS subject alternative name the certificate must hold,
	// compared without regard to case.
	SANDNS string
	// Certificates are the client's self-signed certificates: it
	// authenticates with any of them, as long as it is valid.
	Certificates []*x509.Certificate
}

// Method returns the RFC 8705 token_endpoint_auth_method of a: tls_client_auth,
// self_signed_tls_client_auth, or "" when a names nothing.
func (a CertificateAuth) Method() string {
	switch {
	case len(a.Certificates) > 0:
		return AuthSelfSignedTLSClient
	case a.SubjectDN != "" || a.SANURI != "" || a.SANDNS != "":
		return AuthTLSClient
	}
	return ""
}

// Errors of the registry functions.
var (
	ErrClientExists  = errors.New("client already exists")
	ErrUnknownClient = errors.New("no such client")
)

// invalidError is a client description that the registry refuses: a
// malformed id or tier, a lifetime out of range, an unknown permission.
type invalidError struct{ error }

func (e invalidError) Unwrap() error { return e.error }

var (
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	tierPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// registryFile is the YAML registry:
//
//	clients:
//	- id: billing-sync
//	  secret_hash: $argon2id$v=19$m=19456,t=2,p=1$...$...
//	  grants: [LIC.READ_ORDERS, ORD.READ]
//	  tier: pro
//	  token_lifetime: 30m
//	  introspect: true
//	  exchange: true
//
// It is read strictly with sigs.k8s.io/yaml (unknown fields and duplicate
// keys are errors) and written with go.yaml.in/yaml/v3, which keeps the
// fields in this order.
type registryFile struct {
	Clients []clientEntry `json:"clients" yaml:"clients"`
}

type clientEntry struct {
	ID               string   `json:"id" yaml:"id"`
	SecretHash       string   `json:"secret_hash,omitempty" yaml:"secret_hash,omitempty"`
	Grants           []string `json:"grants" yaml:"grants,flow"`
	Tier             string   `json:"tier,omitempty" yaml:"tier,omitempty"`
	TokenLifetime    duration `json:"token_lifetime,omitempty" yaml:"token_lifetime,omitempty"`
	Introspect       bool     `json:"introspect,omitempty" yaml:"introspect,omitempty"`
	Exchange         bool     `json:"exchange,omitempty" yaml:"exchange,omitempty"`
	certificateEntry `yaml:",inline"`
}

// duration is a time.Duration written as a Go duration string, "30m".
type duration time.Duration

func (d duration) String() string {
	s := time.Duration(d).String()
	s, _ = strings.CutSuffix(s, "m0s")
	if strings.HasSuffix(s, "h0") {
		s = strings.TrimSuffix(s, "0")
	} else if !strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "h") {
		s += "m"
	}
	return s
}

func (d duration) MarshalYAML() (any, error) { return d.String(), nil }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`token_lifetime must be a duration such as "30m" or "2h"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("token_lifetime: %w", err)
	}
	*d = duration(v)
	return nil
}

const registryHeader = "# Clients of the Portcullis token issuer, managed with \"portcullis clients\".\n" +
	"# Secrets are kept only as argon2id hashes.\n"

// registry is a validated registry, ready for the token endpoint.
type registry struct {
	clients map[string]*client
}

// client is a registered client, with its grants resolved through the
// catalog.
type client struct {
	id       string
	hash     string
	masks    map[string]uint64 // domain → mask, non-zero masks only
	scope    string            // the granted permissions, space-separated, in catalog order
	tier     string
	lifetime time.Duration // 0: the issuer's default
	// introspect: the client may call the introspection endpoint.
	introspect bool
	// exchange: the client may use the token exchange grant.
	exchange bool
	// auth is the client's token_endpoint_auth_method; with a
	// certificate, hash is "".
	auth                      string
	subjectDN, sanURI, sanDNS string              // tls_client_auth: the one to match
	certs                     []*x509.Certificate // self_signed_tls_client_auth
	boundTokens               bool                // tls_client_certificate_bound_access_tokens
}

// decodeRegistry parses a registry file strictly: unknown fields and
// duplicate keys are errors.
func decodeRegistry(data []byte) (*registryFile, error) {
	var f registryFile
	if len(bytes.TrimSpace(data)) == 0 {
		return &f, nil
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// readRegistryFile reads the registry at path; a missing file is an empty
// registry.
func readRegistryFile(path string) (*registryFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &registryFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := decodeRegistry(data)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return f, nil
}

// compile validates every client of f, resolving grants through cat, and
// returns the registry or an error listing every problem.
func (f *registryFile) compile(cat *catalog.Catalog, maxLifetime time.Duration) (*registry, error) {
	r := &registry{clients: make(map[string]*client, len(f.Clients))}
	var errs []error
	for i, e := range f.Clients {
		c, err := e.compile(cat, maxLifetime)
		if err != nil {
			name := fmt.Sprintf("client %q", e.ID)
			if e.ID == "" {
				name = fmt.Sprintf("client #%d", i+1)
			}
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if _, dup := r.clients[c.id]; dup {
			errs = append(errs, fmt.Errorf("client %q: %w", c.id, ErrClientExists))
			continue
		}
		r.clients[c.id] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func (e *clientEntry) compile(cat *catalog.Catalog, maxLifetime time.Duration) (*client, error) {
	if err := validateClient(e.ID, e.Tier, time.Duration(e.TokenLifetime), maxLifetime); err != nil {
		return nil, err
	}
	cert, err := e.certificateEntry.compile(e.SecretHash)
	if err != nil {
		return nil, err
	}
	if cert.auth == AuthClientSecret {
		if e.SecretHash == "" {
			return nil, errors.New("no secret_hash")
		}
		if err := checkHash(e.SecretHash); err != nil {
			return nil, err
		}
	}
	masks, err := grantMasks(cat, e.Grants)
	if err != nil {
		return nil, err
	}
	c := &client{
		id:         e.ID,
		hash:       e.SecretHash,
		masks:      masks,
		scope:      scopeOf(cat, masks),
		tier:       e.Tier,
		lifetime:   time.Duration(e.TokenLifetime),
		introspect: e.Introspect,
		exchange:   e.Exchange,
	}
	c.auth, c.subjectDN, c.sanURI, c.sanDNS, c.certs, c.boundTokens = cert.auth, cert.subjectDN, cert.sanURI, cert.sanDNS, cert.certs, cert.boundTokens
	return c, nil
}

func validateClient(id, tier string, lifetime, maxLifetime time.Duration) error {
	switch {
	case !clientIDPattern.MatchString(id):
		return fmt.Errorf("client id %q is not 1 to 128 letters, digits, '.', '_' or '-' starting with a letter or digit", id)
	case tier != "" && !tierPattern.MatchString(tier):
		return fmt.Errorf("tier %q is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit", tier)
	case lifetime < 0 || (lifetime > 0 && lifetime < time.Second):
		return fmt.Errorf("token_lifetime %s is below 1s", lifetime)
	case lifetime > maxLifetime:
		return fmt.Errorf("token_lifetime %s is above the maximum %s", lifetime, maxLifetime)
	}
	return nil
}

// grantMasks resolves permission names to masks, naming every unknown one.
func grantMasks(cat *catalog.Catalog, grants []string) (map[string]uint64, error) {
	masks, err := cat.Masks(grants)
	if err != nil {
		return nil, fmt.Errorf("grants %w", err)
	}
	return masks, nil
}

// scopeOf names the permissions of masks, space-separated, in catalog
// order.
func scopeOf(cat *catalog.Catalog, masks map[string]uint64) string {
	var b strings.Builder
	for _, p := range cat.Granted(masks) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// loadRegistry reads and validates the registry at path.
func loadRegistry(path string, cat *catalog.Catalog, maxLifetime time.Duration) (*registry, error) {
	f, err := readRegistryFile(path)
	if err != nil {
		return nil, err
	}
	r, err := f.compile(cat, maxLifetime)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return r, nil
}

// updateRegistry applies change to the registry at path under an exclusive
// lock, and writes the result atomically with mode 0600. When cat is not
// nil, the result must validate against it.
func updateRegistry(path string, cat *catalog.Catalog, maxLifetime time.Duration, change func(*registryFile) error) error {
	if path == "" {
		return errors.New("no registry path")
	}
	unlock, err := lockBeside(path)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := readRegistryFile(path)
	if err != nil {
		return err
	}
	if err := change(f); err != nil {
		return err
	}
	slices.SortFunc(f.Clients, func(a, b clientEntry) int { return strings.Compare(a.ID, b.ID) })
	if cat != nil {
		if _, err := f.compile(cat, maxLifetime); err != nil {
			return fmt.Errorf("registry %s: %w", path, err)
		}
	}
	if f.Clients == nil {
		f.Clients = []clientEntry{}
	}
	var buf bytes.Buffer
	buf.WriteString(registryHeader)
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

// lockBeside creates the directory of path (mode 0700) if missing, and
// takes the lock of path: path.lock, beside it.
func lockBeside(path string) (unlock func(), err error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	return lockFile(path + ".lock")
}

// AddClient adds a client to the registry at path (created, with its
// directory, if missing) and returns its new secret: 32 random bytes,
// base64url. Only the secret's hash is stored: show the secret to the
// operator once, and never log it. A client with [Client].CertificateAuth
// gets no secret, and AddClient returns "". Every grant must name a permission of
// cat. It honours [WithHasher] and [WithMaxLifetime].
func AddClient(path string, cat *catalog.Catalog, c Client, opts ...Option) (string, error) {
	if cat == nil {
		return "", errors.New("no catalog")
	}
	cfg := newConfig(opts)
	return addClient(path, cat, cfg.hasher, cfg.maxLifetime, c)
}

func addClient(path string, cat *catalog.Catalog, hasher Hasher, maxLifetime time.Duration, c Client) (string, error) {
	if err := validateClient(c.ID, c.Tier, c.TokenLifetime, maxLifetime); err != nil {
		return "", invalidError{err}
	}
	if _, err := grantMasks(cat, c.Grants); err != nil {
		return "", invalidError{err}
	}
	cert, err := newCertificateEntry(c)
	if err != nil {
		return "", invalidError{err}
	}
	var secret, hash string
	if cert.Method == "" {
		secret = newSecret()
		if hash, err = hasher.Hash([]byte(secret)); err != nil {
			return "", err
		}
	}
	err = updateRegistry(path, cat, maxLifetime, func(f *registryFile) error {
		for _, e := range f.Clients {
			if e.ID == c.ID {
				return fmt.Errorf("client %q: %w", c.ID, ErrClientExists)
			}
		}
		f.Clients = append(f.Clients, clientEntry{
			ID:               c.ID,
			SecretHash:       hash,
			Grants:           append([]string{}, c.Grants...),
			Tier:             c.Tier,
			TokenLifetime:    duration(c.TokenLifetime),
			Introspect:       c.Introspect,
			Exchange:         c.Exchange,
			certificateEntry: cert,
		})
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ListClients returns the clients of the registry at path, sorted by id;
// a missing file has none.
func ListClients(path string) ([]Client, error) {
	f, err := readRegistryFile(path)
	if err != nil {
		return nil, err
	}
	clients := make([]Client, 0, len(f.Clients))
	for _, e := range f.Clients {
		clients = append(clients, e.public())
	}
	slices.SortFunc(clients, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return clients, nil
}

// RevokeClient removes the client id from the registry at path and
// revokes every token it holds ([RevokeClientTokens]): running issuers
// give it no new token once the registry file is rewritten, and gateways
// that follow them refuse its tokens within a second of the issuer
// reading the revocation. It honours [WithClock] and [WithMaxLifetime].
func RevokeClient(path, id string, opts ...Option) error {
	_, err := revokeClient(path, id, nil, opts...)
	return err
}

// UpdateGrants replaces the grants of the client id in the registry at
// path, and returns the client as registered now. Every grant must name a
// permission of cat. Running issuers apply the change from their next
// reload; tokens the client already holds keep their permissions until
// they expire. It honours [WithMaxLifetime].
func UpdateGrants(path string, cat *catalog.Catalog, id string, grants []string, opts ...Option) (Client, error) {
	if cat == nil {
		return Client{}, errors.New("no catalog")
	}
	return updateGrants(path, cat, newConfig(opts).maxLifetime, id, grants, nil)
}

// RotateSecret gives the client id of the registry at path a new secret,
// and returns it: show it once, and never log it. The old secret stops
// working at the next reload of running issuers. It honours [WithHasher].
func RotateSecret(path, id string, opts ...Option) (string, error) {
	secret, _, err := rotateSecret(path, newConfig(opts).hasher, id, nil)
	return secret, err
}

// A reachCheck vets the client an update is about to change, under the
// registry's lock: the client administration service refuses, with it,
// callers who do not hold every permission the client is granted.
type reachCheck func(Client) error

// changeClient finds the client id under the registry's lock, lets check,
// if not nil, vet it, then applies change to the registry, i being the
// client's index. It returns the client as it was before the change.
func changeClient(path string, cat *catalog.Catalog, maxLifetime time.Duration, id string, check reachCheck, change func(f *registryFile, i int)) (Client, error) {
	var found Client
	err := updateRegistry(path, cat, maxLifetime, func(f *registryFile) error {
		i := slices.IndexFunc(f.Clients, func(e clientEntry) bool { return e.ID == id })
		if i < 0 {
			return fmt.Errorf("client %q: %w", id, ErrUnknownClient)
		}
		found = f.Clients[i].public()
		if check != nil {
			if err := check(found); err != nil {
				return err
			}
		}
		change(f, i)
		return nil
	})
	return found, err
}

func updateGrants(path string, cat *catalog.Catalog, maxLifetime time.Duration, id string, grants []string, check reachCheck) (Client, error) {
	if _, err := grantMasks(cat, grants); err != nil {
		return Client{}, invalidError{err}
	}
	c, err := changeClient(path, cat, maxLifetime, id, check, func(f *registryFile, i int) {
		f.Clients[i].Grants = append([]string{}, grants...)
	})
	if err != nil {
		return Client{}, err
	}
	c.Grants = slices.Clone(grants)
	return c, nil
}

func rotateSecret(path string, hasher Hasher, id string, check reachCheck) (string, Client, error) {
	secret := newSecret()
	hash, err := hasher.Hash([]byte(secret)) // before taking the lock: it is slow
	if err != nil {
		return "", Client{}, err
	}
	withSecret := func(c Client) error {
		if m := c.CertificateAuth.Method(); m != "" {
			return invalidError{fmt.Errorf("client %q authenticates with its certificate (%s), and has no secret to rotate", id, m)}
		}
		if check != nil {
			return check(c)
		}
		return nil
	}
	c, err := changeClient(path, nil, 0, id, withSecret, func(f *registryFile, i int) { f.Clients[i].SecretHash = hash })
	if err != nil {
		return "", Client{}, err
	}
	return secret, c, nil
}

func revokeClient(path, id string, check reachCheck, opts ...Option) (Client, error) {
	c, err := changeClient(path, nil, 0, id, check, func(f *registryFile, i int) {
		f.Clients = slices.Delete(f.Clients, i, i+1)
	})
	if err != nil {
		return c, err
	}
	// After the registry is rewritten: a token issued since is refused by
	// the issuer's check of the registry, one issued before by this.
	if err := RevokeClientTokens(path, id, newConfig(opts).now(), opts...); err != nil {
		return c, fmt.Errorf("client %q removed, but its tokens not revoked: %w", id, err)
	}
	return c, nil
}

// public is the entry as operators see it, without its secret's hash.
func (e clientEntry) public() Client {
	c := Client{ID: e.ID, Grants: slices.Clone(e.Grants), Tier: e.Tier, TokenLifetime: time.Duration(e.TokenLifetime), Introspect: e.Introspect, Exchange: e.Exchange}
	c.CertificateAuth, c.CertificateBoundTokens = e.certificateEntry.public()
	return c
}
