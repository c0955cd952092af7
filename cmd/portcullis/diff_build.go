package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// builder builds the images that "diff" compares, with buf, from
// directories and git commits.
type builder struct {
	ctx   context.Context
	buf   []string // the buf command line
	where string   // the directory whose path in the repository a commit is built at
	tmp   string   // where images and commits' trees are written
}

// build builds the buf workspace or module in dir into an image and
// returns its path.
func (b *builder) build(dir, name string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	image := filepath.Join(b.tmp, name+".binpb")
	args := append(append([]string(nil), b.buf[1:]...), "build", abs, "-o", image)
	cmd := exec.CommandContext(b.ctx, b.buf[0], args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s build %s: %v\n%s", strings.Join(b.buf, " "), dir, err, strings.TrimSpace(out.String()))
	}
	return image, nil
}

// checkout writes the tree of commit ref, at the path of b.where in its
// repository, into a temporary directory with git archive, and returns the
// directory that corresponds to b.where. It leaves the repository as it
// is: no worktree, no index, no checkout.
func (b *builder) checkout(ref, name string) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return "", fmt.Errorf("%q: %w", ref, errNotASource)
	}
	top, err := b.git(b.where, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("%q: %w (%v)", ref, errNotASource, err)
	}
	commit, err := b.git(b.where, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%q: %w", ref, errNotASource)
	}
	prefix, err := b.git(b.where, "rev-parse", "--show-prefix")
	if err != nil {
		return "", err
	}
	root := filepath.Join(b.tmp, name)
	args := []string{"-C", top, "archive", "--format=tar", commit}
	if prefix != "" {
		args = append(args, "--", prefix)
	}
	cmd := exec.CommandContext(b.ctx, "git", args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	untarErr := untar(pipe, root)
	_, _ = io.Copy(io.Discard, pipe) // let git finish when untar stops early
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", ref, err, strings.TrimSpace(errOut.String()))
	}
	if untarErr != nil {
		return "", fmt.Errorf("git archive %s: %w", ref, untarErr)
	}
	return filepath.Join(root, filepath.FromSlash(prefix)), nil
}

// git runs git in dir and returns its output, trimmed.
func (b *builder) git(dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(b.ctx, "git", append([]string{"-C", dir}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// untar writes the directories, files and symbolic links of a tar stream
// under dir, through an os.Root so that no path or link can write outside.
func untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(strings.TrimSuffix(h.Name, "/"))
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeFile(root, name, tr)
		case tar.TypeSymlink:
			if err = root.MkdirAll(filepath.Dir(name), 0o755); err == nil {
				err = root.Symlink(h.Linkname, name)
			}
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(root *os.Root, name string, r io.Reader) error {
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
