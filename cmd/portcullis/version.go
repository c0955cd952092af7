package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// runVersion prints what this binary was built from: the module version,
// the VCS revision and time and whether the tree had uncommitted changes,
// and the Go toolchain.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo() // nil when the binary carries none
	fmt.Fprint(stdout, versionText(bi))
	return nil
}

// versionText renders build information, which may be nil when the
// binary carries none.
func versionText(bi *debug.BuildInfo) string {
	var b strings.Builder
	version, module, goVersion := "(unknown)", "github.com/portcullis/portcullis", runtime.Version()
	settings := map[string]string{}
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintf(&b, "portcullis %s\n", version)
	fmt.Fprintf(&b, "  module    %s\n", module)
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "  revision  %s\n", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "  time      %s\n", t)
		}
		switch settings["vcs.modified"] {
		case "true":
			b.WriteString("  modified  true (built with uncommitted changes)\n")
		case "false":
			b.WriteString("  modified  false\n")
		}
	} else {
		b.WriteString("  revision  unknown (built without VCS information: go run, -buildvcs=false, or outside a checkout)\n")
	}
	arch := settings["GOOS"] + "/" + settings["GOARCH"]
	if arch == "/" {
		arch = runtime.GOOS + "/" + runtime.GOARCH
	}
	fmt.Fprintf(&b, "  go        %s %s\n", goVersion, arch)
	return b.String()
}
