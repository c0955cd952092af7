// Package logtest holds what a test reads of logs that the code under test
// writes from several goroutines.
//
//	logs := new(logtest.Buffer)
//	logger := slog.New(slog.NewJSONHandler(logs, nil))
//	...
//	if strings.Contains(logs.String(), secret) { t.Error("the log shows the secret") }
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that goroutines write while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
