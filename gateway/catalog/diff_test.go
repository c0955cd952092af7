package catalog_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/internal/rulecases"
)

// build builds the catalog of one test file.
func build(t *testing.T, source string) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(prototest.Files(t, map[string]string{rulecases.File: source}))
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestDiff(t *testing.T) {
	t.Parallel()
	for _, tc := range rulecases.Changes {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			changes := catalog.Diff(build(t, rulecases.Base), build(t, tc.After))
			if len(changes) != len(tc.Want) {
				t.Fatalf("%d changes, want %d:\n%s", len(changes), len(tc.Want), lines(changes))
			}
			for i, w := range tc.Want {
				c := changes[i]
				if c.Kind != w.Kind || c.Rule != w.Rule || c.Element != w.Element || !strings.Contains(c.Message, w.Message) {
					t.Errorf("change %d = %s\nwant %s: %s: %s: ...%s...", i, c, w.Kind, w.Rule, w.Element, w.Message)
				}
				if c.Kind != c.Rule.Kind() {
					t.Errorf("change %d is %s, its rule %s", i, c.Kind, c.Rule.Kind())
				}
				if c.File != rulecases.File || c.Line == 0 || c.Column == 0 {
					t.Errorf("change %d is at %q", i, c.Position())
				}
			}
		})
	}
}

func TestDiffPositions(t *testing.T) {
	t.Parallel()
	before := build(t, rulecases.Base)
	after := build(t, rulecases.Changes[0].After) // Get is public
	changes := catalog.Diff(before, after)
	if len(changes) != 1 {
		t.Fatalf("changes: %v", changes)
	}
	c := changes[0]
	const want = "test.proto:13:3: loosened: method-public: /test.v1.Svc/Get: method is now public: it required ALP.READ"
	if c.String() != want {
		t.Errorf("String = %q\nwant %q", c, want)
	}
	if c.Descriptor == nil || c.Descriptor.FullName() != "test.v1.Svc.Get" || c.Against == nil || c.Against.FullName() != "test.v1.Svc.Get" {
		t.Errorf("descriptors %v, %v", c.Descriptor, c.Against)
	}
	if m, _ := after.Method("/test.v1.Svc/Get"); c.Descriptor != m.Descriptor {
		t.Error("Descriptor is not the method's descriptor in the new catalog")
	}

	// A removed method is where it was.
	changes = catalog.Diff(after, build(t, strings.Replace(rulecases.Changes[0].After, "  rpc Get(", "  // gone\n  rpc Got(", 1)))
	i := slices.IndexFunc(changes, func(c catalog.Change) bool { return c.Rule == catalog.RuleMethodRemoved })
	if i < 0 || changes[i].Descriptor != nil || changes[i].Against == nil || changes[i].Position() != "test.proto:13:3" {
		t.Errorf("removed: %v", changes)
	}
}

func TestDiffIdentical(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	if changes := catalog.Diff(cat, cat); len(changes) != 0 {
		t.Errorf("a catalog differs from itself: %v", changes)
	}
}

func lines[T fmt.Stringer](xs []T) string {
	var b strings.Builder
	for _, x := range xs {
		b.WriteString(x.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestRules(t *testing.T) {
	t.Parallel()
	purpose := regexp.MustCompile(`^[A-Z].*\.$`) // as buf plugins need it
	validation, change := catalog.Rules(), catalog.ChangeRules()
	for _, r := range validation {
		if !purpose.MatchString(r.Purpose()) || r.Kind() != "" {
			t.Errorf("validation rule %s: purpose %q, kind %q", r, r.Purpose(), r.Kind())
		}
		if slices.Contains(change, r) {
			t.Errorf("%s is both a validation and a change rule", r)
		}
	}
	for _, r := range change {
		if !purpose.MatchString(r.Purpose()) || r.Kind() == "" {
			t.Errorf("change rule %s: purpose %q, kind %q", r, r.Purpose(), r.Kind())
		}
	}
	if catalog.Rule("nope").Purpose() != "" {
		t.Error("an unknown rule has a purpose")
	}

	// The shared cases break every rule a source can break, and follow
	// every change rule, so that every tool is tested on each.
	broken := map[catalog.Rule]bool{catalog.RuleUnreadableOption: true} // only a corrupt image has it
	for _, tc := range rulecases.Invalid {
		for _, w := range tc.Want {
			broken[w.Rule] = true
		}
	}
	followed := map[catalog.Rule]bool{}
	for _, tc := range rulecases.Changes {
		for _, w := range tc.Want {
			followed[w.Rule] = true
		}
	}
	for _, r := range validation {
		if !broken[r] {
			t.Errorf("no case of rulecases.Invalid breaks %s", r)
		}
	}
	for _, r := range change {
		if !followed[r] {
			t.Errorf("no case of rulecases.Changes follows %s", r)
		}
	}
}
