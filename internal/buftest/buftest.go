// Package buftest runs the real buf command in tests, as the repository
// pins it among its Go tools, on modules that tests write.
package buftest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Root is the repository's root directory.
var Root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

// Command returns the command line that runs buf from the repository's
// root, whatever the working directory: `go -C ROOT tool
// -modfile=tools/go.mod buf` when tools/go.mod pins the tools, else `go
// -C ROOT tool buf`. Its first run builds buf, which takes minutes.
func Command() []string {
	cmd := []string{"go", "-C", Root, "tool"}
	if _, err := os.Stat(filepath.Join(Root, "tools", "go.mod")); err == nil {
		cmd = append(cmd, "-modfile=tools/go.mod")
	}
	return append(cmd, "buf")
}

// Run runs buf with args, finding plugins first in pluginDir when it is
// not "", and returns its exit code and output. Paths in args should be
// absolute. It fails the test when buf cannot run at all.
func Run(t testing.TB, pluginDir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var env []string
	if pluginDir != "" {
		env = append(os.Environ(), "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return Exec(t, env, append(Command(), args...)...)
}

// Exec runs the command line with env (nil: this process's) and returns
// its exit code and output. It fails the test when the command cannot run
// at all.
func Exec(t testing.TB, env []string, line ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(line[0], line[1:]...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v\n%s", line, err, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// Build builds the command at ./cmd/name into dir and returns its path.
func Build(dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = Root
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build ./cmd/" + name + ": " + err.Error() + "\n" + string(output))
	}
	return out, nil
}

// Module writes a buf module in a new temporary directory, with the
// gateway/v1 vocabulary copied in, and returns the directory. files maps
// paths in the module to their text; "buf.yaml" among them configures it.
func Module(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	options, err := os.ReadFile(filepath.Join(Root, "proto", "gateway", "v1", "options.proto"))
	if err != nil {
		t.Fatal(err)
	}
	Write(t, dir, map[string]string{"gateway/v1/options.proto": string(options)})
	Write(t, dir, files)
	return dir
}

// Write writes files (path in dir → text), making directories as needed.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
