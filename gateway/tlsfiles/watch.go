package tlsfiles

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// stamp is what a stat says of a file: a change to either is a change.
type stamp struct {
	mod  time.Time
	size int64
}

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
	stamps, err := w.stat()
	if err != nil {
		return err
	}
	v, err := w.read()
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

// check reads the files again if a stat says one changed. w.mu is held.
func (w *watched[T]) check(now time.Time) {
	w.next.Store(now.Add(w.o.interval).UnixNano())
	stamps, err := w.stat()
	if err != nil {
		// A file missing for a moment, as some rotations do: keep the
		// old value, log once per state of the files.
		if !sameStamps(w.tried, nil) {
			w.o.logger.Warn("tls: cannot read "+w.what+" files; the previous one is kept", "files", w.files, "error", err.Error())
			w.tried = nil
		}
		return
	}
	if sameStamps(stamps, w.tried) {
		return
	}
	w.tried = stamps
	v, err := w.read()
	if err != nil {
		w.o.logger.Warn("tls: the changed "+w.what+" files are refused; the previous one is kept", "files", w.files, "error", err.Error())
		return
	}
	w.current.Store(&loaded[T]{value: v})
	w.o.logger.Info("tls: "+w.what+" reloaded", "files", w.files)
}

func (w *watched[T]) stat() ([]stamp, error) {
	stamps := make([]stamp, len(w.files))
	for i, f := range w.files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		stamps[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return stamps, nil
}

func (w *watched[T]) read() (T, error) {
	data := make([][]byte, len(w.files))
	for i, f := range w.files {
		b, err := os.ReadFile(f)
		if err != nil {
			var zero T
			return zero, err
		}
		data[i] = b
	}
	return w.parse(data)
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}

var errNoFiles = errors.New("no files")
