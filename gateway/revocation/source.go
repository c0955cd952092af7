package revocation

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// source is the state of one place revocations come from.
type source struct {
	name     atomic.Pointer[string] // changes once, when a feed is discovered
	loaded   atomic.Bool            // read in full at least once
	loadedCh chan struct{}          // closed when loaded is set
	synced   atomic.Bool            // read in full since the last (re)connection
	contact  atomic.Int64           // unix nanoseconds of the last answer
	lastErr  atomic.Pointer[error]
	failing  atomic.Bool // for logging each change once
	once     sync.Once
}

func (s *Set) newSource(name string) *source {
	src := &source{loadedCh: make(chan struct{})}
	src.setName(name)
	s.sources = append(s.sources, src)
	return src
}

func (src *source) setName(name string) { src.name.Store(&name) }

func (src *source) String() string { return *src.name.Load() }

// describe names the source, its state and its last error.
func (src *source) describe(state string) string {
	msg := src.String() + ": " + state
	if err := src.lastErr.Load(); err != nil {
		msg += ": " + (*err).Error()
	}
	return msg
}

// heard records an answer of the source.
func (s *Set) heard(src *source) {
	src.contact.Store(s.cfg.now().UnixNano())
	src.lastErr.Store(nil)
	if src.failing.CompareAndSwap(true, false) {
		s.cfg.logger.Info("revocations: source recovered", slog.String("source", src.String()))
	}
}

// failed records a failed attempt to reach the source.
func (s *Set) failed(src *source, err error) {
	src.lastErr.Store(&err)
	if src.failing.CompareAndSwap(false, true) {
		s.cfg.logger.Warn("revocations: source failing", slog.String("source", src.String()), slog.Any("error", err))
	}
}

// desync records that the source must be read in full again, as after a
// reconnection: revocations may have been missed.
func (s *Set) desync(src *source) { src.synced.Store(false) }

// synced records that the source has been read in full.
func (s *Set) synced(src *source) {
	s.heard(src)
	src.synced.Store(true)
	if !src.loaded.Load() {
		src.loaded.Store(true)
		// The set is marked loaded before the source's channel closes:
		// whoever WaitReady lets go finds Loaded true.
		s.updateLoaded()
		src.once.Do(func() { close(src.loadedCh) })
		s.cfg.logger.Info("revocations: source loaded", slog.String("source", src.String()), slog.Int("revocations", s.Len()))
	}
}

// updateLoaded sets loaded once every source is.
func (s *Set) updateLoaded() {
	for _, src := range s.sources {
		if !src.loaded.Load() {
			return
		}
	}
	s.loaded.Store(true)
}

// backoff is the delay between failed attempts: from the least, doubling
// up to the most, with jitter.
type backoff struct {
	delay time.Duration
}

// wait waits for the next attempt, or until the set closes; it reports
// false when the set closed.
func (s *Set) wait(b *backoff) bool {
	if b.delay == 0 {
		b.delay = s.cfg.retryMin
	}
	d := b.delay/2 + rand.N(b.delay/2+1)
	b.delay = min(2*b.delay, s.cfg.retryMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reset starts the backoff over after a success.
func (b *backoff) reset() { b.delay = 0 }
