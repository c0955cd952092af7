package gateway

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// watch checks, every reload.watch_interval, the configuration file and
// the files the serving configuration names that a reload reads (buf
// images, JWKS files, CA files: [config.Config.ReadFiles]), and reloads
// when one changed: its modification time or size first, then its content, so that
// a file written again unchanged reloads nothing. It stops when the
// gateway closes.
func (g *Gateway) watch(cfg *config.Config) {
	every := cfg.Reload.WatchEvery()
	if g.opts.configFile == "" || every <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(g.life)
	done := make(chan struct{})
	g.closers = append(g.closers, func() error { cancel(); <-done; return nil })
	seen := make(map[string]fileState)
	g.changed(seen) // the files as they are at start
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if g.changed(seen) {
				g.logger.InfoContext(ctx, "configuration changed on disk: reloading", "file", g.opts.configFile)
				_, _ = g.ReloadFile(ctx) // a refusal is logged and counted
				g.changed(seen)          // the images the new configuration names
			}
		}
	}()
}

// fileState is what the watch knows of a file.
type fileState struct {
	mod  time.Time
	size int64
	hash [sha256.Size]byte
	err  bool // could not be read
}

// changed updates seen with the watched files and reports whether one's
// content changed since the last look.
func (g *Gateway) changed(seen map[string]fileState) bool {
	files := append([]string{g.opts.configFile}, g.current().cfg.ReadFiles()...)
	changed := false
	for _, name := range files {
		before, known := seen[name]
		now := stat(name, before)
		seen[name] = now
		if known && !now.err && (before.err || now.hash != before.hash) {
			changed = true
		}
	}
	return changed
}

// stat returns the state of a file, hashing it only when its time or size
// is not those of before.
func stat(name string, before fileState) fileState {
	fi, err := os.Stat(name)
	if err != nil {
		return fileState{err: true}
	}
	now := fileState{mod: fi.ModTime(), size: fi.Size()}
	if !before.err && now.mod.Equal(before.mod) && now.size == before.size {
		now.hash = before.hash
		return now
	}
	f, err := os.Open(name)
	if err != nil {
		return fileState{err: true}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileState{err: true}
	}
	copy(now.hash[:], h.Sum(nil))
	return now
}
