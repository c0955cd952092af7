package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/internal/buftest"
	"github.com/portcullis/portcullis/internal/rulecases"
)

// build builds a module's image with buf.
func build(t *testing.T, dir string) string {
	t.Helper()
	image := filepath.Join(t.TempDir(), "image.binpb")
	if code, stdout, stderr := buf(t, "build", dir, "-o", image); code != 0 {
		t.Fatalf("buf build = %d %s%s", code, stdout, stderr)
	}
	return image
}

// TestPluginAgreesWithCheck runs buf lint with the plugin and portcullis
// check on every file of rulecases.Invalid: both report the same problems,
// with the same rules, at the same places.
func TestPluginAgreesWithCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range rulecases.Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dir := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, rulecases.File: tc.Source})
			code, stdout, stderr := buf(t, "lint", "--error-format=json", dir)
			if code != 100 {
				t.Fatalf("buf lint = %d %s%s; want 100", code, stdout, stderr)
			}
			fromPlugin := annotations(t, dir, stdout)

			code, stdout, stderr = portcullis(t, "check", "--image", build(t, dir))
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 1 || stdout != "" || len(lines) < 2 {
				t.Fatalf("portcullis check = %d %q %q; want 1 and problems", code, stdout, stderr)
			}
			var fromCheck []string
			for _, line := range lines[:len(lines)-1] {
				// file:line:column: element: rule: message
				parts := strings.SplitN(line, ": ", 4)
				if len(parts) != 4 {
					t.Fatalf("check printed %q", line)
				}
				at, element, rule, message := parts[0], parts[1], parts[2], parts[3]
				fromCheck = append(fromCheck, fmt.Sprintf("%s: %s: %s: %s", at, ruleID(catalog.Rule(rule)), element, message))
			}
			slices.Sort(fromCheck)
			if !slices.Equal(fromPlugin, fromCheck) || len(fromCheck) != len(tc.Want) {
				t.Errorf("buf lint reports\n%s\nportcullis check\n%s\nthe case wants %d problems",
					strings.Join(fromPlugin, "\n"), strings.Join(fromCheck, "\n"), len(tc.Want))
			}
		})
	}
}

// TestPluginBreakingAgreesWithDiff runs buf breaking with the plugin, and
// portcullis diff on the images of the same modules, on every edit of
// rulecases.Changes: buf reports each loosened, breaking and tightened
// change that diff prints, with its rule, at its place, and fails exactly
// when there is one.
func TestPluginBreakingAgreesWithDiff(t *testing.T) {
	t.Parallel()
	yaml := bufYAML(usePortcullis, "  use: [PORTCULLIS, PORTCULLIS_TIGHTENED]\n")
	before := build(t, buftest.Module(t, map[string]string{"buf.yaml": yaml, rulecases.File: rulecases.Base}))
	for _, tc := range rulecases.Changes {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dir := buftest.Module(t, map[string]string{"buf.yaml": yaml, rulecases.File: tc.After})
			bufCode, stdout, stderr := buf(t, "breaking", "--error-format=json", dir, "--against", before)
			fromPlugin := annotations(t, dir, stdout)

			diffCode, stdout, stderr2 := portcullis(t, "diff", "--format", "json", before, build(t, dir))
			var report struct {
				Changes []struct {
					Kind    catalog.ChangeKind `json:"kind"`
					Rule    catalog.Rule       `json:"rule"`
					Element string             `json:"element"`
					Message string             `json:"message"`
					File    string             `json:"file"`
					Line    int                `json:"line"`
					Column  int                `json:"column"`
				} `json:"changes"`
			}
			if err := json.Unmarshal([]byte(stdout), &report); err != nil {
				t.Fatalf("portcullis diff = %d %q %s: %v", diffCode, stdout, stderr2, err)
			}
			var fromDiff []string
			loosened := false
			for _, c := range report.Changes {
				loosened = loosened || c.Kind == catalog.Loosened
				if c.Kind == catalog.Loosened || c.Kind == catalog.Breaking || c.Kind == catalog.Tightened {
					fromDiff = append(fromDiff, fmt.Sprintf("%s:%d:%d: %s: %s: %s", c.File, c.Line, c.Column, ruleID(c.Rule), c.Element, c.Message))
				}
			}
			slices.Sort(fromDiff)
			if !slices.Equal(fromPlugin, fromDiff) || len(report.Changes) != len(tc.Want) {
				t.Errorf("buf breaking reports\n%s\nportcullis diff\n%s\nthe case wants %d changes",
					strings.Join(fromPlugin, "\n"), strings.Join(fromDiff, "\n"), len(tc.Want))
			}
			if want := map[bool]int{true: 100, false: 0}[len(fromDiff) > 0]; bufCode != want {
				t.Errorf("buf breaking = %d, want %d: %s", bufCode, want, stderr)
			}
			if want := map[bool]int{true: 1, false: 0}[loosened]; diffCode != want {
				t.Errorf("portcullis diff = %d, want %d: %s", diffCode, want, stderr2)
			}
		})
	}
}
