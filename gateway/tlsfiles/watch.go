package tlsfiles

import (
	"crypto/sha256"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stamp is the SHA-256 of a file's content. A stat is not enough: two
// writes within the file system's timestamp granularity leave the same
// modification time, and a rotated key or certificate is often the same
// size. The files are a few kilobytes, read at most once per check
// interval.
type stamp [sha256.Size]byte

// loaded is one reading of the files.
type loaded[T any] struct {
	value T
}

// watched is a value parsed from files, parsed again when they change.
type watched[T any] struct {
	files []string
	what  string // for logs: "certificate", "CA bundle"
	parse func(data [][]byte) (T, error)
	o     options

	current atomic.Pointer[loaded[T]]
	next    atomic.Int64 // UnixNano of the next check

	mu    sync.Mutex // held by the one check in progress
	tried []stamp    // the stamps of the files last read, good or bad
}

// load reads the files the first time: an error here is the caller's.
func (w *watched[T]) load() error {
	data, stamps, err := w.readAll()
	if err != nil {
		return err
	}
	v, err := w.parse(data)
	if err != nil {
		return err
	}
	w.tried = stamps
	w.current.Store(&loaded[T]{value: v})
	w.next.Store(w.o.now().Add(w.o.interval).UnixNano())
	return nil
}

// get returns the current value, first checking the files when the check
// interval has passed and no other check is in progress.
func (w *watched[T]) get() *loaded[T] {
	now := w.o.now()
	if next := w.next.Load(); now.UnixNano() >= next && w.mu.TryLock() {
		w.check(now)
		w.mu.Unlock()
	}
	return w.current.Load()
}

// check parses the files again if one changed. w.mu is held.
func (w *watched[T]) check(now time.Time) {
	w.next.Store(now.Add(w.o.interval).UnixNano())
	data, stamps, err := w.readAll()
	if err != nil {
		// A file missing for a moment, as some rotations do: keep the
		// old value, log once per state of the files.
		if w.tried != nil {
			w.o.logger.Warn("tls: cannot read "+w.what+" files; the previous one is kept", "files", w.files, "error", err.Error())
			w.tried = nil
		}
		return
	}
	if slices.Equal(stamps, w.tried) {
		return
	}
	w.tried = stamps
	v, err := w.parse(data)
	if err != nil {
		w.o.logger.Warn("tls: the changed "+w.what+" files are refused; the previous one is kept", "files", w.files, "error", err.Error())
		return
	}
	w.current.Store(&loaded[T]{value: v})
	w.o.logger.Info("tls: "+w.what+" reloaded", "files", w.files)
}

// readAll reads every file and returns their contents and stamps.
func (w *watched[T]) readAll() ([][]byte, []stamp, error) {
	data := make([][]byte, len(w.files))
	stamps := make([]stamp, len(w.files))
	for i, f := range w.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		data[i], stamps[i] = b, sha256.Sum256(b)
	}
	return data, stamps, nil
}

var errNoFiles = errors.New("no files")
