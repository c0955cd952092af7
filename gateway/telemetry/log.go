package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// tokenPrefixLen is the most of a token an access line shows: enough to
// tell tokens apart in an incident, far too little to use one.
const tokenPrefixLen = 8

// tokenPrefix returns the first characters of the bearer token in header,
// or "" when there is none or it is too short to show any of it safely.
func tokenPrefix(header http.Header) string {
	v := header.Get("Authorization")
	const scheme = "Bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return ""
	}
	tok := strings.TrimLeft(v[len(scheme):], " ")
	if len(tok) < 4*tokenPrefixLen {
		return ""
	}
	for i := range tokenPrefixLen {
		if !isBase64URL(tok[i]) {
			return ""
		}
	}
	return tok[:tokenPrefixLen]
}

func isBase64URL(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// logCall writes the access line of a call: what was called and how, what
// came of it, how long it took and who called, by client id and at most
// the first characters of the token.
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
	var attrs [13]slog.Attr
	attrs[0] = slog.String("procedure", procedure)
	attrs[1] = slog.String("protocol", peer.Protocol)
	attrs[2] = slog.String("code", codeName(d.code))
	attrs[3] = slog.Float64("duration_ms", float64(elapsed)/float64(time.Millisecond))
	attrs[4] = slog.String("outcome", d.outcome.String())
	attrs[5] = slog.String("peer", peer.Addr)
	n := 6
	if d.clientID != "" {
		attrs[n] = slog.String("client_id", d.clientID)
		n++
	}
	if d.tier != "" {
		attrs[n] = slog.String("tier", d.tier)
		n++
	}
	if p := tokenPrefix(header); p != "" {
		attrs[n] = slog.String("token_prefix", p)
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
	l.LogAttrs(ctx, level, "call", attrs[:n]...)
}
