package token

import (
	"context"
	"errors"
	"log/slog"
)

// keyState is the outcome of an issuer's last key fetch, as the log
// tells it.
type keyState uint8

const (
	stateStarting keyState = iota // no fetch over yet
	stateReady                    // keys installed
	stateFailing                  // the fetch failed: the previous keys, if any, serve
	stateRefused                  // the key set was refused, or held no usable key
)

// refusedKeySet reports whether err refuses a key set the issuer did
// serve, rather than a failed fetch.
func refusedKeySet(err error) bool {
	return errors.Is(err, errNoUsableKey) || errors.Is(err, errPrivateKey)
}

// report tells the observer and the log the outcome of a fetch of the
// issuer's keys: keys installed and a nil error, or zero and the error.
// The log gets one record per change of state, not one per fetch, and
// never tokens or key material: errors name keys by kid and parameters by
// name only.
func (v *Verifier) report(is *issuer, keys int, err error) {
	if v.cfg.observeKeys != nil {
		v.cfg.observeKeys(is.name, keys, err)
	}
	next := stateReady
	switch {
	case err == nil:
	case refusedKeySet(err):
		next = stateRefused
	default:
		next = stateFailing
	}
	is.stateMu.Lock()
	prev := is.state
	is.state = next
	is.stateMu.Unlock()
	if prev == next {
		return
	}
	log := v.cfg.logger
	ctx := context.Background()
	ix := is.keys.Load()
	serving := ix != nil && len(ix.all) > 0
	switch next {
	case stateReady:
		// Ready is marked after the report: an issuer ready already had
		// keys, and recovers.
		msg := "token issuer keys ready"
		if is.isReady() {
			msg = "token issuer keys recovered"
		}
		log.LogAttrs(ctx, slog.LevelInfo, msg, slog.String("issuer", is.name), slog.Int("keys", keys))
	case stateFailing:
		log.LogAttrs(ctx, slog.LevelWarn, "token issuer keys fetch failing", slog.String("issuer", is.name),
			slog.Bool("previous_keys_serve", serving), slog.String("error", err.Error()))
	case stateRefused:
		log.LogAttrs(ctx, slog.LevelError, "token issuer key set refused", slog.String("issuer", is.name),
			slog.Bool("previous_keys_serve", serving), slog.String("error", err.Error()))
	}
}
