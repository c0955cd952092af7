package issuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// A Hasher hashes client secrets for the registry and verifies presented
// secrets against the stored hashes. The registry accepts argon2id hashes
// in the PHC string format and bcrypt hashes.
type Hasher interface {
	// Hash returns the encoded hash of secret, with a fresh salt.
	Hash(secret []byte) (string, error)
	// Verify reports whether secret matches the encoded hash. It compares
	// in constant time, and fails only when encoded is malformed.
	Verify(encoded string, secret []byte) (bool, error)
}

// Argon2id hashes secrets with argon2id (RFC 9106) and encodes them in the
// PHC string format, $argon2id$v=19$m=19456,t=2,p=1$salt$hash. Verify reads
// the parameters from each hash, and also verifies bcrypt hashes.
type Argon2id struct {
	Memory     uint32 // KiB
	Iterations uint32
	Threads    uint8
}

// DefaultHasher returns the hasher the issuer uses unless told otherwise:
// argon2id with 19 MiB, 2 iterations and 1 thread, the OWASP minimum.
func DefaultHasher() Hasher {
	return Argon2id{Memory: 19 * 1024, Iterations: 2, Threads: 1}
}

const (
	saltLen = 16
	keyLen  = 32

	// Bounds on the parameters of a stored hash, so that a mistaken
	// registry cannot make one verification take minutes or gigabytes.
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxIterations = 64
	maxThreads    = 64
)

// Hash implements [Hasher].
func (a Argon2id) Hash(secret []byte) (string, error) {
	if a.Memory < 8*uint32(a.Threads) || a.Memory > maxMemory || a.Iterations < 1 || a.Iterations > maxIterations || a.Threads < 1 || a.Threads > maxThreads {
		return "", fmt.Errorf("argon2id parameters m=%d,t=%d,p=%d out of range", a.Memory, a.Iterations, a.Threads)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails
	key := argon2.IDKey(secret, salt, a.Iterations, a.Memory, a.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, a.Memory, a.Iterations, a.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify implements [Hasher].
func (Argon2id) Verify(encoded string, secret []byte) (bool, error) {
	if isBcrypt(encoded) {
		switch err := bcrypt.CompareHashAndPassword([]byte(encoded), secret); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("bcrypt hash: %w", err)
		}
	}
	p, err := parseArgon2id(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey(secret, p.salt, p.iterations, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// checkHash reports whether encoded is a hash the registry accepts.
func checkHash(encoded string) error {
	if isBcrypt(encoded) {
		_, err := bcrypt.Cost([]byte(encoded))
		return err
	}
	_, err := parseArgon2id(encoded)
	return err
}

func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")
}

type argon2idHash struct {
	memory, iterations uint32
	threads            uint8
	salt, key          []byte
}

var errNotArgon2id = errors.New("secret hash is neither argon2id ($argon2id$v=19$m=...,t=...,p=...$salt$hash) nor bcrypt")

// parseArgon2id parses a PHC string: $argon2id$v=19$m=M,t=T,p=P$salt$hash.
func parseArgon2id(encoded string) (argon2idHash, error) {
	var h argon2idHash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, errNotArgon2id
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, errNotArgon2id
	}
	var seen [3]bool
	for _, kv := range params {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, errNotArgon2id
		}
		var i int
		switch k {
		case "m":
			i, h.memory = 0, uint32(n)
		case "t":
			i, h.iterations = 1, uint32(n)
		case "p":
			if n > maxThreads {
				return h, fmt.Errorf("argon2id hash: p=%d above %d", n, maxThreads)
			}
			i, h.threads = 2, uint8(n)
		default:
			return h, errNotArgon2id
		}
		if seen[i] {
			return h, errNotArgon2id
		}
		seen[i] = true
	}
	switch {
	case h.threads < 1:
		return h, errors.New("argon2id hash: p must be at least 1")
	case h.memory < 8*uint32(h.threads) || h.memory > maxMemory:
		return h, fmt.Errorf("argon2id hash: m=%d out of range [8p, %d]", h.memory, maxMemory)
	case h.iterations < 1 || h.iterations > maxIterations:
		return h, fmt.Errorf("argon2id hash: t=%d out of range [1, %d]", h.iterations, maxIterations)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return h, errors.New("argon2id hash: salt is not 8 to 64 bytes of unpadded base64")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("argon2id hash: hash is not 16 to 64 bytes of unpadded base64")
	}
	return h, nil
}

// newSecret returns a client secret: 32 random bytes, base64url (43
// characters, 256 bits).
func newSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
