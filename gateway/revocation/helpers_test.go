package revocation_test

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func contextWithTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
