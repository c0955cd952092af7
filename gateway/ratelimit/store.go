package ratelimit

import (
	"context"
	"errors"
)

// Store decides, for one key at a time, whether a request fits its limit,
// and records it when it does. Implementations are safe for concurrent
// use: [Memory] within one process, [Redis] across gateway replicas.
type Store interface {
	// Allow applies limit to key for a request of cost n (usually 1; 0
	// asks without consuming). It returns [ErrInvalidLimit] for a limit
	// that is not [Limit.Valid], and an error wrapping [ErrUnavailable]
	// when the store cannot decide.
	Allow(ctx context.Context, key string, limit Limit, n int) (Result, error)
}

var (
	// ErrInvalidLimit is returned for a limit that is not [Limit.Valid].
	ErrInvalidLimit = errors.New("ratelimit: invalid limit")
	// ErrUnavailable is wrapped by the errors of a store that cannot
	// decide, such as a [Redis] store that fails closed during an outage.
	ErrUnavailable = errors.New("ratelimit: store unavailable")
	// ErrLimited is wrapped by the errors the [Interceptor] returns for
	// calls and stream messages over their limit.
	ErrLimited = errors.New("ratelimit: rate limit exceeded")
)
