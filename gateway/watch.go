package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
)

// watch checks, every reload.watch_interval, the configuration file and
// the files the serving configuration names that a reload reads (buf
// images, CA files: [config.Config.ReadFiles]), and reloads when one
// changed: a file of up to 1 MiB by its content, a larger one by its
// modification time and size first, so that a file written again unchanged
// reloads nothing. A reload refused for a reason that may pass (an
// issuer's keys not fetched yet, a backend's CA file that holds no
// certificate yet) is tried again, after twice the wait each time, up to
// a minute, until one succeeds, a file changes again, or another reload
// (a signal, the admin endpoint) changes the configuration; a mistake in
// the configuration is not, until a file changes. It stops when the
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
		var (
			retry   time.Time // when a refused reload is tried again; zero: none is
			wait    = every
			refused uint64 // the generation that was serving when it was refused
		)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if name := g.changed(seen); name != "" {
				g.logger.InfoContext(ctx, "configuration changed on disk: reloading", "file", name)
				retry, wait = time.Now(), every
			} else if !retry.IsZero() && g.Generation() != refused {
				retry = time.Time{} // another reload came first
			}
			if retry.IsZero() || time.Now().Before(retry) {
				continue
			}
			_, err := g.ReloadFile(ctx) // a refusal is logged and counted
			var again retryable
			switch {
			case g.changed(seen) != "": // a file changed while it reloaded: again
				retry, wait = time.Now(), every
			case err == nil || !errors.As(err, &again):
				retry = time.Time{}
			default:
				wait = min(2*wait, time.Minute)
				retry, refused = time.Now().Add(wait), g.Generation()
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

// changed updates seen with the watched files and returns the name of
// one whose content changed since the last look, or "". A file it had not
// seen (one a new configuration names) is taken as it is.
func (g *Gateway) changed(seen map[string]fileState) string {
	files := append([]string{g.opts.configFile}, g.current().cfg.ReadFiles()...)
	changed := ""
	for _, name := range files {
		before, known := seen[name]
		now := stat(name, before)
		seen[name] = now
		if known && !now.err && (before.err || now.hash != before.hash) && changed == "" {
			changed = name
		}
	}
	return changed
}

// stat returns the state of a file: a file of up to 1 MiB is hashed at
// every look (a rewrite of the same size within one tick of the clock
// keeps its time and size), a larger one only when its time or size is not
// those of before.
func stat(name string, before fileState) fileState {
	fi, err := os.Stat(name)
	if err != nil || !fi.Mode().IsRegular() { // a pipe or a device could block the read
		return fileState{err: true}
	}
	now := fileState{mod: fi.ModTime(), size: fi.Size()}
	if !before.err && now.size > 1<<20 && now.mod.Equal(before.mod) && now.size == before.size {
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
