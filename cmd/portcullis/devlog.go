package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
)

// devHandler is the slog handler of "portcullis dev": one short line per
// record, for a person at a terminal rather than a log pipeline. The
// gateway's access lines (message "call") read
//
//	15:04:05 call /example.orders.v1.OrdersService/GetOrder grpc ok allowed 1.2ms client_id=reader tier=free
//
// and leave out the peer address and the token hash; other records are
// the time, the level unless it is INFO, the message and key=value pairs.
type devHandler struct {
	mu     *sync.Mutex
	w      io.Writer
	level  slog.Leveler
	prefix string // the open groups, "a.b."
	attrs  string // the pairs of WithAttrs, formatted
}

// newDevLogger returns a logger writing devHandler lines to w.
func newDevLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(&devHandler{mu: new(sync.Mutex), w: w, level: level})
}

// Enabled implements [slog.Handler].
func (h *devHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements [slog.Handler].
func (h *devHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		writeAttr(&b, h.prefix, a)
	}
	c := *h
	c.attrs = b.String()
	return &c
}

// WithGroup implements [slog.Handler].
func (h *devHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}

// accessFields are the attributes of an access line written as bare
// values, in this order; accessHidden those left out (the generation:
// portcullis dev does not reload).
var (
	accessFields = []string{"procedure", "protocol", "code", "outcome", "duration_ms"}
	accessHidden = map[string]bool{"peer": true, "token_hash": true, "http_status": true, "generation": true}
)

// Handle implements [slog.Handler].
func (h *devHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if !r.Time.IsZero() {
		b.WriteString(r.Time.Format(time.TimeOnly))
		b.WriteByte(' ')
	}
	if r.Level != slog.LevelInfo {
		b.WriteString(r.Level.String())
		b.WriteByte(' ')
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	if r.Message == "call" && h.prefix == "" {
		writeAccess(&b, r)
	} else {
		r.Attrs(func(a slog.Attr) bool {
			writeAttr(&b, h.prefix, a)
			return true
		})
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// writeAccess writes the attributes of an access line: the main fields
// as bare values, then the others as key=value; a list of permissions is
// joined with commas, and the error of a denied call, which only repeats
// the missing permissions, is left out.
func writeAccess(b *strings.Builder, r slog.Record) {
	fields := make(map[string]slog.Value, len(accessFields))
	var rest []slog.Attr
	denied := false
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case accessHidden[a.Key]:
		case slices.Contains(accessFields, a.Key):
			fields[a.Key] = a.Value.Resolve()
		default:
			if list, ok := a.Value.Any().([]string); ok {
				a.Value = slog.StringValue(strings.Join(list, ","))
				denied = denied || a.Key == "missing_permissions"
			}
			rest = append(rest, a)
		}
		return true
	})
	for _, k := range accessFields {
		v, ok := fields[k]
		if !ok {
			continue
		}
		b.WriteByte(' ')
		if k == "duration_ms" && v.Kind() == slog.KindFloat64 {
			b.WriteString(shortDuration(time.Duration(v.Float64() * float64(time.Millisecond))))
			continue
		}
		b.WriteString(v.String())
	}
	for _, a := range rest {
		if !(denied && a.Key == "error") {
			writeAttr(b, "", a)
		}
	}
}

// shortDuration rounds d to two or three significant digits: 43µs, 3.4ms.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		d = d.Round(time.Microsecond)
	case d < time.Second:
		d = d.Round(100 * time.Microsecond)
	default:
		d = d.Round(10 * time.Millisecond)
	}
	return d.String()
}

// writeAttr writes " key=value", quoting a value that holds spaces,
// quotes or '='; groups become dotted keys.
func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range v.Group() {
			writeAttr(b, prefix, g)
		}
		return
	}
	s := v.String()
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		s = strconv.Quote(s)
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(s)
}

// logTokenRequests wraps the issuer's handler h to write one line per
// token request to logger: status, duration and the client id (the Basic
// user name, never the secret). Key and metadata fetches go unlogged.
func logTokenRequests(logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != issuer.TokenPath {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		attrs := []any{"status", sw.status, "duration", shortDuration(time.Since(start))}
		if id, _, ok := r.BasicAuth(); ok {
			attrs = append(attrs, "client_id", id)
		}
		logger.Info("token", attrs...)
	})
}

// statusWriter records the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
