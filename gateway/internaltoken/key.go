package internaltoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeyFile is the name of the gateway's signing key in a key directory: a
// PEM "PRIVATE KEY" (PKCS #8) holding a P-256 key.
const KeyFile = "internal-signing-key.pem"

// LoadOrGenerateKey returns the P-256 key in dir/[KeyFile]. When dir is ""
// it generates one that lives as long as the process; when the file does
// not exist it generates one and writes it there (mode 0600), so that the
// gateway keeps its key, and backends their trust, across restarts.
func LoadOrGenerateKey(dir string) (*ecdsa.PrivateKey, error) {
	if dir == "" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	path := filepath.Join(dir, KeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PEM PRIVATE KEY", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 key (ES256)", path)
	}
	return key, nil
}

// publicJWK returns the public half of key as a JWK, with its RFC 7638
// thumbprint as kid.
func publicJWK(key *ecdsa.PrivateKey) (map[string]string, error) {
	pub, err := key.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	x, y := enc.EncodeToString(pub[1:33]), enc.EncodeToString(pub[33:])
	// RFC 7638 §3.2: the required members, in lexicographic order, no spaces.
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return map[string]string{
		"kty": "EC", "crv": "P-256", "x": x, "y": y,
		"kid": enc.EncodeToString(sum[:]), "alg": "ES256", "use": "sig",
	}, nil
}

func keySet(jwk map[string]string) ([]byte, error) {
	return json.Marshal(map[string]any{"keys": []any{jwk}})
}
