package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// The signing algorithms the issuer supports.
const (
	ES256 = "ES256" // ECDSA P-256 with SHA-256, the default
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys or larger
	EdDSA = "EdDSA" // Ed25519
)

const (
	keyFileExt = ".jwk"
	rsaBits    = 2048

	// Members of a key file beyond those of RFC 7517, which other JWK
	// readers ignore. Times are RFC 3339, with fractional seconds.
	memberCreated   = "created_at"
	memberActivates = "activates_at"
)

// signingKey is one key of the key directory, ready to sign.
type signingKey struct {
	kid       string
	alg       jwa.SignatureAlgorithm
	created   time.Time
	activates time.Time // when it starts to sign
	private   crypto.Signer
	signer    jws.Signer
	header    []byte  // the base64url-encoded protected header of its tokens
	public    jwk.Key // as published: kty and key material, kid, alg, use
	path      string
}

// newSigningKey generates a key for alg that activates at the given time,
// and returns it with the contents of its file.
func newSigningKey(alg string, created, activates time.Time) (*signingKey, []byte, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, unsupportedAlg(alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	key, err := jwk.FromRaw(priv)
	if err != nil {
		return nil, nil, err
	}
	kid, err := thumbprint(key)
	if err != nil {
		return nil, nil, err
	}
	for name, value := range map[string]any{
		jwk.KeyIDKey:     kid,
		jwk.AlgorithmKey: jwa.SignatureAlgorithm(alg),
		jwk.KeyUsageKey:  jwk.ForSignature,
		memberCreated:    created.UTC().Format(time.RFC3339Nano),
		memberActivates:  activates.UTC().Format(time.RFC3339Nano),
	} {
		if err := key.Set(name, value); err != nil {
			return nil, nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	data, err := json.MarshalIndent(key, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	data = append(data, '\n')
	k, err := parseKeyFile(kid+keyFileExt, data)
	if err != nil {
		return nil, nil, err
	}
	return k, data, nil
}

func unsupportedAlg(alg string) error {
	return fmt.Errorf("signing algorithm %q is not supported; use %s, %s or %s", alg, ES256, RS256, EdDSA)
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of key, base64url:
// the key's kid.
func thumbprint(key jwk.Key) (string, error) {
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// parseKeyFile parses the private JWK in a key file named name, checking
// that it is a private key fit for its declared algorithm and that its kid
// is its thumbprint and its file name.
func parseKeyFile(name string, data []byte) (*signingKey, error) {
	key, err := jwk.ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("not a JWK: %w", err)
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || !private {
		return nil, errors.New("not a private key")
	}
	alg := jwa.SignatureAlgorithm(key.Algorithm().String())
	var raw any
	if err := key.Raw(&raw); err != nil {
		return nil, fmt.Errorf("key material: %w", err)
	}
	var priv crypto.Signer
	switch alg {
	case ES256:
		k, ok := raw.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, errors.New("alg ES256 needs an EC P-256 key")
		}
		priv = k
	case RS256:
		k, ok := raw.(*rsa.PrivateKey)
		if !ok || k.N.BitLen() < rsaBits {
			return nil, fmt.Errorf("alg RS256 needs an RSA key of %d bits or more", rsaBits)
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("RSA key: %w", err)
		}
		priv = k
	case EdDSA:
		k, ok := raw.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("alg EdDSA needs an Ed25519 key")
		}
		priv = k
	default:
		return nil, unsupportedAlg(string(alg))
	}
	kid, err := thumbprint(key)
	if err != nil {
		return nil, err
	}
	if key.KeyID() != kid {
		return nil, fmt.Errorf("kid %q is not the key's thumbprint %q", key.KeyID(), kid)
	}
	if name != kid+keyFileExt {
		return nil, fmt.Errorf("file of key %s must be named %s", kid, kid+keyFileExt)
	}
	k := &signingKey{kid: kid, alg: alg, private: priv}
	if k.created, err = timeMember(key, memberCreated); err != nil {
		return nil, err
	}
	if k.activates, err = timeMember(key, memberActivates); err != nil {
		return nil, err
	}
	if k.signer, err = jws.NewSigner(alg); err != nil {
		return nil, err
	}
	if k.public, err = jwk.FromRaw(priv.Public()); err != nil {
		return nil, err
	}
	for name, value := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := k.public.Set(name, value); err != nil {
			return nil, err
		}
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(alg), kid, "at+jwt"})
	if err != nil {
		return nil, err
	}
	k.header = base64.RawURLEncoding.AppendEncode(nil, header)
	return k, nil
}

func timeMember(key jwk.Key, name string) (time.Time, error) {
	v, ok := key.Get(name)
	if !ok {
		return time.Time{}, fmt.Errorf("no %q member", name)
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a string", name)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %w", name, err)
	}
	return t, nil
}

// ensureKeyDir creates the key directory with mode 0700 if it is missing,
// and refuses one that others may write to: whoever can add a key file
// can mint tokens.
func ensureKeyDir(dir string) error {
	if dir == "" {
		return errors.New("no key directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("key directory %s is not a directory", dir)
	}
	if checkModes && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("key directory %s has mode %04o: others may write keys to it; chmod 700 %[1]s", dir, fi.Mode().Perm())
	}
	return nil
}

// checkModes is whether file modes mean anything here.
var checkModes = runtime.GOOS != "windows" && runtime.GOOS != "plan9"

// readKeyDir reads every key file (*.jwk) of dir, sorted by activation
// time then kid. Files whose names start with a dot are ignored. Any key
// file that cannot be used is an error naming it.
func readKeyDir(dir string) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var keys []*signingKey
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keyFileExt) {
			continue
		}
		path := filepath.Join(dir, name)
		k, err := readKeyFile(path, e)
		if err != nil {
			errs = append(errs, fmt.Errorf("key file %s: %w", path, err))
			continue
		}
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b *signingKey) int {
		if c := a.activates.Compare(b.activates); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
	return keys, nil
}

func readKeyFile(path string, e fs.DirEntry) (*signingKey, error) {
	fi, err := e.Info()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if checkModes && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("mode %04o lets others read the private key; chmod 600 %s", fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseKeyFile(e.Name(), data)
	if err != nil {
		return nil, err
	}
	k.path = path
	return k, nil
}

// writeFileAtomic writes data to path with mode 0600: to a temporary file
// in the same directory, synced, then renamed over path, so that readers
// see the old contents or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable, where supported
		d.Sync()
		d.Close()
	}
	return nil
}

// KeyState is where a signing key is in its life.
type KeyState string

// The states of a key, in the order a key goes through them.
const (
	// KeyPending keys are published and will sign from their activation.
	KeyPending KeyState = "pending"
	// The KeyActive key signs new tokens; there is at most one.
	KeyActive KeyState = "active"
	// KeyRetired keys no longer sign, and stay published until every token
	// they signed has expired.
	KeyRetired KeyState = "retired"
	// KeyExpired keys are no longer published; their files may be deleted.
	KeyExpired KeyState = "expired"
)

// KeyInfo describes a signing key of a key directory.
type KeyInfo struct {
	KID       string    // RFC 7638 thumbprint, base64url
	Algorithm string    // ES256, RS256 or EdDSA
	Created   time.Time // when it was generated
	Activates time.Time // when it starts, or started, to sign
	Retired   time.Time // when the next key took over; zero until then
	Expires   time.Time // when it leaves the JWKS; zero until retired
	State     KeyState
	Path      string // its file
}

// keyStates returns the state of each key at now. keys are sorted by
// activation; the latest key activated by now is active, the ones before
// it are retired from the activation of their successor, and leave the
// JWKS retention later.
func keyStates(keys []*signingKey, now time.Time, retention time.Duration) []KeyInfo {
	infos := make([]KeyInfo, len(keys))
	for i, k := range keys {
		info := KeyInfo{KID: k.kid, Algorithm: string(k.alg), Created: k.created, Activates: k.activates, Path: k.path}
		switch {
		case k.activates.After(now):
			info.State = KeyPending
		case i+1 < len(keys) && !keys[i+1].activates.After(now):
			info.Retired = keys[i+1].activates
			info.Expires = info.Retired.Add(retention)
			info.State = KeyRetired
			if !now.Before(info.Expires) {
				info.State = KeyExpired
			}
		default:
			info.State = KeyActive
		}
		infos[i] = info
	}
	return infos
}

func retention(c *config) time.Duration { return c.maxLifetime + RetentionMargin }

// ListKeys returns the keys of the key directory dir and their state now,
// in order of activation. It honours [WithClock] and [WithMaxLifetime].
func ListKeys(dir string, opts ...Option) ([]KeyInfo, error) {
	c := newConfig(opts)
	keys, err := readKeyDir(dir)
	if err != nil {
		return nil, err
	}
	return keyStates(keys, c.now(), retention(c)), nil
}

// RotateKey adds a new key for alg (ES256, RS256 or EdDSA) to the key
// directory dir, creating it if needed. The key is published at once and
// signs from its activation: now, or later with [WithActivationDelay]. The
// key it replaces stays published until the tokens it signed have expired
// ([WithMaxLifetime] plus [RetentionMargin]). RotateKey then deletes the
// files of expired keys. Running issuers pick the new key up at their next
// reload. It honours WithClock, WithActivationDelay and WithMaxLifetime.
func RotateKey(dir, alg string, opts ...Option) (KeyInfo, error) {
	c := newConfig(opts)
	switch alg {
	case ES256, RS256, EdDSA:
	default:
		return KeyInfo{}, unsupportedAlg(alg)
	}
	if err := ensureKeyDir(dir); err != nil {
		return KeyInfo{}, err
	}
	keys, err := readKeyDir(dir)
	if err != nil {
		return KeyInfo{}, err
	}
	now := c.now()
	activates := now.Add(max(c.activationDelay, 0)).Round(0)
	if n := len(keys); n > 0 {
		last := keys[n-1]
		if last.activates.After(now) {
			return KeyInfo{}, fmt.Errorf("key %s already waits to activate at %s", last.kid, last.activates.Format(time.RFC3339))
		}
		// Strictly after the last, so that the order of keys never hangs on
		// their kids.
		activates = later(activates, last.activates.Add(time.Nanosecond))
	}
	k, data, err := newSigningKey(alg, now, activates)
	if err != nil {
		return KeyInfo{}, err
	}
	k.path = filepath.Join(dir, k.kid+keyFileExt)
	if err := writeFileAtomic(k.path, data); err != nil {
		return KeyInfo{}, err
	}
	keys = append(keys, k)
	states := keyStates(keys, now, retention(c))
	var errs []error
	for _, s := range states {
		if s.State == KeyExpired {
			if err := os.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return states[len(states)-1], errors.Join(errs...)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
