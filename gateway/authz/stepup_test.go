package authz_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/authz"
)

// New reports invalid values of the options of step-up and high-value
// methods instead of ignoring them.
func TestStepUpOptions(t *testing.T) {
	t.Parallel()
	cat := testCatalog(t)
	for _, tc := range []struct {
		name string
		opt  authz.Option
		want string
	}{
		{"nil freshness", authz.WithFreshness(nil), "WithFreshness(nil)"},
		{"nil clock", authz.WithClock(nil), "WithClock(nil)"},
		{"nil option", nil, "nil Option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := authz.New(cat, nil, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := authz.New(cat, nil, authz.WithFreshness(func() error { return errors.New("stale") })); err != nil {
		t.Errorf("New with a freshness check: %v", err)
	}
}
