package issuer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
)

// The revocation file beside the registry holds what was revoked, one
// JSON revocation per line without its issuer (the issuer's own), as
// revocation.Wire writes it:
//
//	{"jti":"Zm9v...","exp":1767225600}
//	{"client_id":"billing","before":1767222000,"exp":1767308700}
//
// Commands append to it under a lock; running issuers read what was
// appended, every revocation poll interval, and serve it in their feed.
// A revocation is dropped from the file once it has expired, when the
// file is compacted.

// RevocationsPath returns the revocation file of the registry at
// registryPath: beside it, named after it, such as clients.revocations
// for clients.yaml.
func RevocationsPath(registryPath string) string {
	return strings.TrimSuffix(registryPath, filepath.Ext(registryPath)) + ".revocations"
}

// compactSize is the size past which an append first drops the expired
// revocations, if they are at least half of the file.
const compactSize = 64 << 10

// appendRevocations appends ws to the revocation file at path (created,
// with mode 0600, if missing), under an exclusive lock.
func appendRevocations(path string, now time.Time, ws ...revocation.Wire) error {
	unlock, err := lockBeside(path)
	if err != nil {
		return err
	}
	defer unlock()
	var lines bytes.Buffer
	for _, w := range ws {
		w.Issuer = ""
		b, err := json.Marshal(w)
		if err != nil {
			return err
		}
		lines.Write(b)
		lines.WriteByte('\n')
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > compactSize {
		if done, err := compactRevocations(path, now, lines.Bytes()); done || err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(lines.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// compactRevocations rewrites the file without its expired revocations,
// and with extra appended, when they are at least half of it. It reports
// whether it did.
func compactRevocations(path string, now time.Time, extra []byte) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var kept bytes.Buffer
	total := 0
	for line := range bytes.Lines(data) {
		total++
		var w revocation.Wire
		if line[len(line)-1] != '\n' || json.Unmarshal(line, &w) != nil || w.Expires <= now.Unix() {
			continue
		}
		kept.Write(line)
	}
	if kept.Len() > len(data)/2 {
		return false, nil
	}
	kept.Write(extra)
	return true, writeFileAtomic(path, kept.Bytes())
}

// revocationFile reads what was appended to a revocation file since the
// last read.
type revocationFile struct {
	path   string
	mu     sync.Mutex
	stat   os.FileInfo // of the file read last; nil: none yet
	offset int64       // bytes of it read
}

// readNew returns the revocations appended since the last call, all of
// them the first time and after the file was compacted, and the number
// of lines that are not revocations.
func (f *revocationFile) readNew(issuer string) ([]revocation.Revocation, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.stat, f.offset = nil, 0
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, 0, err
	}
	if f.stat == nil || !os.SameFile(f.stat, fi) || fi.Size() < f.offset {
		f.offset = 0 // a new file: compacted, or replaced
	}
	f.stat = fi
	if fi.Size() == f.offset {
		return nil, 0, nil
	}
	if _, err := file.Seek(f.offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	var (
		rs  []revocation.Revocation
		bad int
	)
	rd := bufio.NewReader(file)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			break // EOF, or a line still being written: read it next time
		}
		f.offset += int64(len(line))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var w revocation.Wire
		if err := json.Unmarshal(line, &w); err != nil {
			bad++
			continue
		}
		w.Issuer = "" // the file holds the issuer's own revocations
		r, err := w.Revocation(issuer)
		if err != nil {
			bad++
			continue
		}
		rs = append(rs, r)
	}
	return rs, bad, nil
}

// revocationExpiry is when a revocation of tokens issued up to issued may
// be forgotten: when the longest-lived of them has expired, plus the
// margin for clock skew that key retention allows too.
func revocationExpiry(issued time.Time, maxLifetime time.Duration) time.Time {
	return issued.Add(maxLifetime + RetentionMargin)
}

// RevokeToken revokes the token whose jti is jti, whatever client holds
// it: every gateway that follows the issuer (through its revocation feed,
// or Redis) refuses it within a second of the issuer reading the
// revocation file of the registry at registryPath, which running issuers
// poll. Not knowing the token's expiry, the revocation lasts the maximum
// token lifetime ([WithMaxLifetime]). It honours [WithClock] and
// [WithMaxLifetime].
func RevokeToken(registryPath, jti string, opts ...Option) error {
	cfg := newConfig(opts)
	if jti == "" || len(jti) > revocation.MaxTokenIDLength {
		return fmt.Errorf("token id %q is not 1 to %d bytes", jti, revocation.MaxTokenIDLength)
	}
	now := cfg.now()
	w := revocation.Wire{TokenID: jti, Expires: revocationExpiry(now, cfg.maxLifetime).Unix()}
	return appendRevocations(RevocationsPath(registryPath), now, w)
}

// RevokeClientTokens revokes every token of client id issued before
// before (which must not be in the future; tokens issued within its
// second are revoked too), whether or not the client is still in the
// registry at registryPath, as [RevokeToken] revokes one token. Tokens
// the client gets after before stay valid. It honours [WithClock] and
// [WithMaxLifetime].
func RevokeClientTokens(registryPath, id string, before time.Time, opts ...Option) error {
	cfg := newConfig(opts)
	now := cfg.now()
	switch {
	case id == "" || len(id) > revocation.MaxClientIDLength:
		return fmt.Errorf("client id %q is not 1 to %d bytes", id, revocation.MaxClientIDLength)
	case before.After(now):
		return fmt.Errorf("the time %s is in the future: only tokens already issued can be revoked", before.UTC().Format(time.RFC3339))
	}
	exp := revocationExpiry(before, cfg.maxLifetime)
	if !exp.After(now) {
		return nil // every token issued before it has expired
	}
	r := revocation.Revocation{Issuer: "-", ClientID: id, Before: before, Expires: exp}
	return appendRevocations(RevocationsPath(registryPath), now, r.ToWire())
}
