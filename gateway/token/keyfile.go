package token

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// keyFileEvery is how often the verifier looks at the local key set files
// of its issuers (Issuer.JWKSFile) for a change.
const keyFileEvery = time.Second

// keyFile is what the verifier last read of an issuer's key set file.
type keyFile struct {
	name string
	hash [sha256.Size]byte
}

// readKeyFile reads the key set file name, of at most limit bytes.
func readKeyFile(is *issuer, name string, limit int64) ([]byte, keyFile, error) {
	f := keyFile{name: name}
	file, err := os.Open(name)
	if err != nil {
		return nil, f, fmt.Errorf("issuer %q: %w", is.name, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, f, fmt.Errorf("issuer %q: %w", is.name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, f, fmt.Errorf("issuer %q: %s is not a regular file", is.name, name)
	}
	doc, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, f, fmt.Errorf("issuer %q: %w", is.name, err)
	}
	f.hash = sha256.Sum256(doc)
	if int64(len(doc)) > limit {
		return nil, f, fmt.Errorf("issuer %q: %s is larger than %d bytes", is.name, name, limit)
	}
	return doc, f, nil
}

// parseLocalKeySet parses a local key set and checks it as [NewVerifier]
// does.
func parseLocalKeySet(is *issuer, doc []byte) (jwk.Set, error) {
	set, err := jwk.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: key set: %w", is.name, err)
	}
	if err := checkLocalSecrets(set, is.algs); err != nil {
		return nil, fmt.Errorf("issuer %q: key set: %w", is.name, err)
	}
	return set, nil
}

// followKeyFile reads an issuer's key set file again whenever it changes,
// until the verifier closes: a rotation on disk needs no restart and no
// reload. At every look it reads the file, up to the key set size limit,
// and parses it only when its hash changed. A file that cannot be read, does not
// parse or breaks the rules of a local key set is logged, once, with its
// name and never its content, and the keys read last keep serving. A file
// that parses but holds no key the verifier can use is logged too, and
// leaves the issuer with no key: its tokens are refused, as they are when
// a fetched key set holds none.
func (v *Verifier) followKeyFile(is *issuer, last keyFile) {
	defer v.wg.Done()
	tick := time.NewTicker(keyFileEvery)
	defer tick.Stop()
	refused := "" // the last refusal logged
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-tick.C:
		}
		doc, now, err := readKeyFile(is, last.name, v.cfg.maxKeySetBytes)
		if err == nil && now.hash == last.hash {
			refused = ""
			continue
		}
		var set jwk.Set
		if err == nil {
			set, err = parseLocalKeySet(is, doc)
		}
		if err != nil {
			if err.Error() != refused {
				refused = err.Error()
				v.cfg.logger.LogAttrs(v.ctx, slog.LevelWarn, "token issuer key file refused: the keys read last keep serving",
					slog.String("issuer", is.name), slog.String("file", last.name), slog.String("error", refused))
			}
			continue
		}
		refused, last = "", now
		if err := v.install(is, set, true); err != nil {
			v.cfg.logger.LogAttrs(v.ctx, slog.LevelWarn, "token issuer key file holds no usable key: its tokens are refused",
				slog.String("issuer", is.name), slog.String("file", last.name), slog.String("error", err.Error()))
			continue
		}
		v.cfg.logger.LogAttrs(v.ctx, slog.LevelInfo, "token issuer key file read again",
			slog.String("issuer", is.name), slog.String("file", last.name), slog.Int("keys", len(is.keys.Load().all)))
	}
}
