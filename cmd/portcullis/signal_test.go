//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/freeport"
)

// TestInterruptExitsZero: on SIGINT or SIGTERM, `portcullis dev` and
// `portcullis gateway` drain and exit 0, run as child processes.
func TestInterruptExitsZero(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "portcullis.yaml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
listen: %s
admin: %s
issuers:
  - {issuer: test, audiences: [portcullis], hmac_secret_env: PORTCULLIS_TEST_SECRET, algorithms: [HS256]}
routes:
  - {service: example.orders.v1.OrdersService, backend: "http://%s"}
`, freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		signal  syscall.Signal
		started string // printed once the command serves
		stopped string // printed once it stopped
	}{
		{"dev SIGINT", devArgs(t, filepath.Join(dir, "dev-int")), syscall.SIGINT, "Press Ctrl-C to stop.", "\nstopped\n"},
		{"dev SIGTERM", devArgs(t, filepath.Join(dir, "dev-term")), syscall.SIGTERM, "Press Ctrl-C to stop.", "\nstopped\n"},
		{"gateway SIGINT", []string{"gateway", "--config", config}, syscall.SIGINT, `"msg":"gateway serving"`, `"msg":"gateway draining"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), runMainEnv+"=1", "PORTCULLIS_TEST_SECRET="+strings.Repeat("s", 32))
			out := newLockedBuffer()
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			waitOutput(t, out, tc.started, time.Minute)
			if err := cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			if err := waitExit(cmd, 30*time.Second); err != nil {
				t.Fatalf("after %v: %v\n%s", tc.signal, err, out.String())
			}
			if !strings.Contains(out.String(), tc.stopped) {
				t.Errorf("after %v, want output containing %q:\n%s", tc.signal, tc.stopped, out.String())
			}
		})
	}
}

// TestMakeRunInterrupt: Ctrl-C on `make run` (SIGINT to the terminal's
// process group) stops the stack cleanly, with no error from make.
func TestMakeRunInterrupt(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make run needs make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	flags := strings.Join(devArgs(t, t.TempDir())[1:], " ")
	cmd := exec.Command("make", "--no-print-directory", "run", "DEV_FLAGS="+flags)
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	group := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-group, syscall.SIGKILL) })
	waitOutput(t, out, "Press Ctrl-C to stop.", 10*time.Minute)
	if !strings.Contains(out.String(), "building bin/portcullis (") {
		t.Errorf("make run did not say it builds the binary:\n%s", out.String())
	}
	if err := syscall.Kill(-group, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = waitExit(cmd, 30*time.Second)
	// make passes the interrupt on to itself once its recipe ended well.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
		t.Errorf("make run after Ctrl-C: %v", err)
	}
	if s := out.String(); strings.Contains(s, "make: ***") || !strings.Contains(s, "\nstopped\n") {
		t.Errorf("after Ctrl-C, want the stack stopped and no error from make:\n%s", s)
	}
}

// devArgs returns the arguments of `portcullis dev` on free ports with
// the state folder dir, not building the tour's tools.
func devArgs(t *testing.T, dir string) []string {
	t.Helper()
	return []string{"dev", "--dir", dir, "--listen", freeport.Addr(t), "--admin", freeport.Addr(t), "--issuer", freeport.Addr(t),
		"--licensing", freeport.Addr(t), "--orders", freeport.Addr(t), "--web", freeport.Addr(t), "--build-tools=false"}
}

// waitOutput waits until out contains s.
func waitOutput(t *testing.T, out *lockedBuffer, s string, timeout time.Duration) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !strings.Contains(out.String(), s) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no %q within %s:\n%s", s, timeout, out.String())
		}
	}
}

// waitExit waits for cmd to exit and returns how it did.
func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running %s after the signal", timeout)
	}
}

// TestHangupReloads: `portcullis gateway` reads its configuration file
// again on SIGHUP, run as a child process; a broken file is refused and
// the gateway goes on serving.
func TestHangupReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "portcullis.yaml")
	listen, admin := freeport.Addr(t), freeport.Addr(t)
	write := func(extra string) {
		t.Helper()
		err := os.WriteFile(config, fmt.Appendf(nil, `
listen: %s
admin: %s
reload: {watch_interval: 0s}
issuers:
  - {issuer: test, audiences: [portcullis], hmac_secret_env: PORTCULLIS_TEST_SECRET, algorithms: [HS256]}
routes:
  - {service: example.orders.v1.OrdersService, backend: "http://127.0.0.1:1"}
%s`, listen, admin, extra), 0o600)
		if err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cmd := exec.Command(os.Args[0], "gateway", "--config", config)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "PORTCULLIS_TEST_SECRET="+strings.Repeat("s", 32))
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitOutput(t, out, `"msg":"gateway serving"`, time.Minute)

	write("limits: {max_timeout: 20s}\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, `"msg":"configuration reloaded","generation":2`, 30*time.Second)

	write("limits: {max_timeout: soon}\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, `"msg":"configuration reload refused: the running configuration stays","generation":2`, 30*time.Second)
	if !strings.Contains(out.String(), "limits.max_timeout") {
		t.Errorf("the refusal does not name the mistake:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(cmd, 30*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, out.String())
	}
}
