package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDevTour runs `portcullis dev` and then every command of the tour it
// prints, exactly as printed, in one shell, checking what each shows.
func TestDevTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the tour needs curl")
	}
	a := devAddrs{gateway: freeAddr(t), admin: freeAddr(t), issuer: freeAddr(t), licensing: freeAddr(t), orders: freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run(ctx, []string{"dev", "--dir", t.TempDir(), "--listen", a.gateway, "--admin", a.admin,
			"--issuer", a.issuer, "--licensing", a.licensing, "--orders", a.orders}, w, &stderr)
		w.Close()
	}()

	// Read the tour: blocks of "# comment" and one command line.
	var commands []string
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	var comment bool
	for lines.Scan() {
		line := lines.Text()
		if line == "Press Ctrl-C to stop." {
			break
		}
		if comment && line != "" {
			commands = append(commands, line)
		}
		comment = strings.HasPrefix(line, "# ")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	want := tour(a, map[string]string{})
	if len(commands) != len(want) {
		t.Fatalf("printed %d commands, want %d; stderr:\n%s", len(commands), len(want), stderr.String())
	}

	var script strings.Builder
	for i, c := range commands {
		fmt.Fprintf(&script, "echo '@@step %d'\n%s\necho\n", i, c)
	}
	shell, cancelShell := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelShell()
	output, err := exec.CommandContext(shell, "bash", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("tour: %v\n%s", err, output)
	}
	steps := strings.Split(string(output), "@@step ")[1:]
	if len(steps) != len(want) {
		t.Fatalf("tour printed %d steps:\n%s", len(steps), output)
	}
	for i, step := range steps {
		if !strings.Contains(step, want[i].expect) {
			t.Errorf("step %d (%s)\n%s\nprinted:\n%s\nwant it to contain %q", i, want[i].comment, commands[i], step, want[i].expect)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev exited %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of an interrupt")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
