package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a logger that writes JSON lines to w, one object per
// record, and drops records below level (an slog.Level, or an
// *slog.LevelVar to change it while running). Access lines are at
// slog.LevelInfo, those of calls that failed in the gateway at
// slog.LevelWarn: slog.LevelWarn keeps only those.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// logCall writes the access line of a call: what was called and how, what
// came of it, how long it took and who called, by client id, token id and
// a keyed hash of the token, never the token, and by the subject, names
// and thumbprint of its client certificate, never the certificate.
func (t *Telemetry) logCall(ctx context.Context, procedure string, peer connect.Peer, header http.Header, d *decision, elapsed time.Duration, sc trace.SpanContext) {
	level := slog.LevelInfo
	if d.outcome == outcomeError {
		level = slog.LevelWarn
	} else if t.cfg.quietAccess {
		return
	}
	l := t.cfg.logger
	if !l.Enabled(ctx, level) {
		return
	}
	var attrs [20]slog.Attr
	attrs[0] = slog.String("procedure", procedure)
	attrs[1] = slog.String("protocol", peer.Protocol)
	attrs[2] = slog.String("code", codeName(d.code))
	attrs[3] = slog.Float64("duration_ms", float64(elapsed)/float64(time.Millisecond))
	attrs[4] = slog.String("outcome", d.outcome.String())
	attrs[5] = slog.String("peer", peer.Addr)
	n := 6
	if d.httpStatus != 0 {
		attrs[n] = slog.Int("http_status", d.httpStatus)
		n++
	}
	if d.clientID != "" {
		attrs[n] = slog.String("client_id", d.clientID)
		n++
	}
	if d.tier != "" {
		attrs[n] = slog.String("tier", d.tier)
		n++
	}
	if d.cert != nil {
		n = appendCertLog(attrs[:], n, d.cert)
	}
	if tok := bearerToken(header); tok != "" {
		attrs[n] = slog.String("token_hash", t.tokens.hash(tok))
		n++
	}
	if d.tokenID != "" {
		attrs[n] = slog.String("token_id", d.tokenID)
		n++
	}
	if len(d.missing) > 0 {
		attrs[n] = slog.Any("missing_permissions", d.missing)
		n++
	}
	if d.policy != "" {
		attrs[n] = slog.String("rate_limit_policy", d.policy)
		n++
	}
	if d.message != "" {
		attrs[n] = slog.String("error", d.message)
		n++
	}
	if sc.IsValid() {
		attrs[n] = slog.String("trace_id", sc.TraceID().String())
		n++
	}
	if d.generation != 0 {
		attrs[n] = slog.Uint64("generation", d.generation)
		n++
	}
	l.LogAttrs(ctx, level, "call", attrs[:n]...)
}
