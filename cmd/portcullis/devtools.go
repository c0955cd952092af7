package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// tourTools are the Go tools the tour runs with "go tool -modfile=...".
var tourTools = []string{"buf", "grpcurl"}

// buildTourTools builds the tour's tools into the Go build cache, as "go
// tool" does at their first use, so that the tour's commands start at once
// rather than compiling silently for minutes. "go tool -n" builds a tool
// and prints where it is without running it. It reports on w: a line when
// the build takes more than a moment, then one when the tools are ready or
// could not be built. It stops when ctx is done.
func buildTourTools(ctx context.Context, modfile string, w io.Writer) {
	names := strings.Join(tourTools, " and ")
	if _, err := os.Stat(modfile); err != nil {
		fmt.Fprintf(w, "\n%s is not here: run the tour's %s commands from the repository's root.\n", modfile, names)
		return
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(w, "\nThe tour's %s commands need Go on PATH: %v\n", names, err)
		return
	}
	start := time.Now()
	var (
		mu              sync.Mutex
		done, announced bool
	)
	announce := time.AfterFunc(2*time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			announced = true
			fmt.Fprintf(w, "\nBuilding %s for the tour in the background: the first time, this downloads and compiles\n"+
				"them, a few minutes. Until they are ready, their commands would build them too: start with curl.\n", names)
		}
	})
	finish := func() bool {
		announce.Stop()
		mu.Lock()
		defer mu.Unlock()
		done = true
		return announced
	}
	for _, tool := range tourTools {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, gobin, "tool", "-n", "-modfile="+modfile, tool)
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			finish()
			if ctx.Err() == nil {
				fmt.Fprintf(w, "\nCould not build %s for the tour (%v); its commands will build it at first use:\n%s", tool, err, lastLines(stderr.String(), 10))
			}
			return
		}
	}
	if finish() {
		fmt.Fprintf(w, "The tour's %s are ready (built in %s).\n", names, time.Since(start).Round(time.Second))
	} else {
		fmt.Fprintf(w, "\nThe tour's %s are ready.\n", names)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "") + "\n"
}
