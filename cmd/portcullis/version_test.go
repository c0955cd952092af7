package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: "portcullis version" and "--version" print the same build
// information: the module, and the Go toolchain that built the binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	var outputs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		outputs = append(outputs, stdout.String())
	}
	if outputs[0] != outputs[1] {
		t.Errorf("version printed\n%s--version printed\n%s", outputs[0], outputs[1])
	}
	for _, want := range []string{
		"portcullis ",
		"  module    github.com/portcullis/portcullis\n",
		"  go        " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
	} {
		if !strings.Contains(outputs[0], want) {
			t.Errorf("version printed\n%s\nwant it to contain %q", outputs[0], want)
		}
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"version", "extra"}, &stdout, &stderr); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}

// TestVersionText: what the version command makes of the build
// information Go stamps into a binary, with and without VCS information.
func TestVersionText(t *testing.T) {
	t.Parallel()
	mod := debug.Module{Path: "github.com/portcullis/portcullis", Version: "v0.0.0-20261020174200-b52ee16e5c3a+dirty"}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{{
		name: "stamped, modified",
		info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: mod, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "b52ee16e5c3a0e5d1c7d54f3c1cbb0f3c6a1e2d4"},
			{Key: "vcs.time", Value: "2026-10-20T17:42:00Z"}, {Key: "vcs.modified", Value: "true"},
		}},
		want: `portcullis v0.0.0-20261020174200-b52ee16e5c3a+dirty
  module    github.com/portcullis/portcullis
  revision  b52ee16e5c3a0e5d1c7d54f3c1cbb0f3c6a1e2d4
  time      2026-10-20T17:42:00Z
  modified  true (built with uncommitted changes)
  go        go1.26.8 linux/arm64
`,
	}, {
		name: "stamped, clean",
		info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: mod.Path, Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "darwin"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.time", Value: "2026-11-01T09:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}},
		want: `portcullis v1.2.0
  module    github.com/portcullis/portcullis
  revision  0123456789abcdef0123456789abcdef01234567
  time      2026-11-01T09:00:00Z
  modified  false
  go        go1.26.8 darwin/amd64
`,
	}, {
		name: "no VCS information",
		info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: mod.Path, Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
		}},
		want: `portcullis (devel)
  module    github.com/portcullis/portcullis
  revision  unknown (built without VCS information: go run, -buildvcs=false, or outside a checkout)
  go        go1.26.8 linux/amd64
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := versionText(tc.info); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
