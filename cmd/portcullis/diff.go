package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
)

const diffUsage = `Usage: portcullis diff [--format text|markdown|json] [--buf CMD] OLD NEW

Lists every change in access from OLD to NEW, loosened first: methods that
became public or require less, masks given to another permission, masks and
domain names that changed, then tightened, added and removed methods. Exits
1 when anything was loosened, 0 otherwise.

OLD and NEW are each a buf image (buf build -o FILE), a directory holding a
buf.yaml, which buf builds, or a git commit (a branch, tag or hash), whose
tree buf builds at the path of the directory argument in the repository, or
of the current directory when neither argument is one:

  portcullis diff main .                  # from the repository's buf.yaml
  portcullis diff --format markdown old.binpb new.binpb

Flags:
`

// runDiff prints the changes in access between two catalogs.
func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("diff", stderr)
	format := fs.String("format", "text", "output format: text, markdown or json")
	bufCmd := fs.String("buf", defaultBuf(), `the buf command that builds directories and commits, split on spaces (default: buf on the PATH, else this repository's "go tool -modfile=tools/go.mod buf")`)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), diffUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(stderr, "portcullis diff: want OLD and NEW, got %d argument(s)\n\n", fs.NArg())
		fs.Usage()
		return errUsage
	}
	if !slices.Contains([]string{"text", "markdown", "json"}, *format) {
		fmt.Fprintf(stderr, "portcullis diff: unknown format %q (want text, markdown or json)\n", *format)
		return errUsage
	}
	b := &builder{ctx: ctx, buf: strings.Fields(*bufCmd), where: "."}
	if len(b.buf) == 0 {
		fmt.Fprintln(stderr, "portcullis diff: --buf is empty")
		return errUsage
	}
	oldArg, newArg := fs.Arg(0), fs.Arg(1)
	for _, arg := range []string{newArg, oldArg} {
		if info, err := os.Stat(arg); err == nil && info.IsDir() {
			b.where = arg
		}
	}
	tmp, err := os.MkdirTemp("", "portcullis-diff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b.tmp = tmp

	oldFiles, err := b.files(oldArg, "old")
	if err != nil {
		return diffSourceError(stderr, "OLD", err)
	}
	newFiles, err := b.files(newArg, "new")
	if err != nil {
		return diffSourceError(stderr, "NEW", err)
	}
	before, err := catalog.New(oldFiles)
	var invalid *catalog.ValidationError
	if errors.As(err, &invalid) {
		// The past may hold mistakes: compare what a gateway could serve.
		fmt.Fprintf(stderr, "portcullis diff: OLD %s has %d problem(s); the services they touch are left out:\n", oldArg, len(invalid.Problems))
		for _, p := range invalid.Problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		before, err = catalog.New(oldFiles, catalog.WithServices())
	}
	if err != nil {
		return fmt.Errorf("OLD %s: %w", oldArg, err)
	}
	after, err := catalog.New(newFiles)
	if err != nil {
		return fmt.Errorf("NEW %s: %w", newArg, err)
	}

	changes := catalog.Diff(before, after)
	var werr error
	switch *format {
	case "json":
		werr = writeDiffJSON(stdout, changes)
	case "markdown":
		werr = writeDiffMarkdown(stdout, changes)
	default:
		werr = writeDiffText(stdout, changes)
	}
	if werr != nil {
		return werr
	}
	if slices.ContainsFunc(changes, func(c catalog.Change) bool { return c.Kind == catalog.Loosened }) {
		return exitError{code: 1}
	}
	return nil
}

// errNotASource reports an argument that is neither an image, a directory
// nor a commit.
var errNotASource = errors.New("not a buf image, a directory or a git commit")

// diffSourceError reports an argument that could not be read or built: a
// usage error when it names nothing.
func diffSourceError(stderr io.Writer, which string, err error) error {
	if errors.Is(err, errNotASource) {
		fmt.Fprintf(stderr, "portcullis diff: %s %v\n", which, err)
		return errUsage
	}
	return fmt.Errorf("%s %w", which, err)
}

// files reads or builds the files an argument names.
func (b *builder) files(arg, name string) (*protoregistry.Files, error) {
	info, err := os.Stat(arg)
	switch {
	case err == nil && info.IsDir():
		image, err := b.build(arg, name)
		if err != nil {
			return nil, err
		}
		return catalog.LoadImage(image)
	case err == nil:
		return catalog.LoadImage(arg)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	dir, err := b.checkout(arg, name)
	if err != nil {
		return nil, err
	}
	image, err := b.build(dir, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	return catalog.LoadImage(image)
}

var changeKinds = []catalog.ChangeKind{catalog.Loosened, catalog.Breaking, catalog.Tightened, catalog.Added, catalog.Removed}

// diffSummary counts changes by kind.
type diffSummary struct {
	Loosened  int `json:"loosened"`
	Breaking  int `json:"breaking"`
	Tightened int `json:"tightened"`
	Added     int `json:"added"`
	Removed   int `json:"removed"`
}

func summarize(changes []catalog.Change) diffSummary {
	var s diffSummary
	for _, c := range changes {
		switch c.Kind {
		case catalog.Loosened:
			s.Loosened++
		case catalog.Breaking:
			s.Breaking++
		case catalog.Tightened:
			s.Tightened++
		case catalog.Added:
			s.Added++
		case catalog.Removed:
			s.Removed++
		}
	}
	return s
}

// String lists the kinds that occur, in order: "1 loosened, 2 added".
func (s diffSummary) String() string {
	var parts []string
	for i, n := range []int{s.Loosened, s.Breaking, s.Tightened, s.Added, s.Removed} {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, changeKinds[i]))
		}
	}
	return strings.Join(parts, ", ")
}

func writeDiffText(w io.Writer, changes []catalog.Change) error {
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "no access changes")
		return err
	}
	for _, c := range changes {
		fmt.Fprintln(w, c)
	}
	_, err := fmt.Fprintf(w, "%d change(s): %s\n", len(changes), summarize(changes))
	return err
}

func writeDiffMarkdown(w io.Writer, changes []catalog.Change) error {
	fmt.Fprint(w, "### Access changes\n\n")
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "No access changes.")
		return err
	}
	summary := summarize(changes).String()
	if strings.Contains(summary, "loosened") {
		summary = "**" + strings.Replace(summary, " loosened", " loosened**", 1)
	}
	fmt.Fprintf(w, "%s.\n\n| Change | Rule | Element | What | Where |\n|---|---|---|---|---|\n", summary)
	cell := strings.NewReplacer("|", `\|`, "\n", " ").Replace
	for _, c := range changes {
		kind := string(c.Kind)
		if c.Kind == catalog.Loosened {
			kind = "**" + kind + "**"
		}
		fmt.Fprintf(w, "| %s | `%s` | `%s` | %s | `%s` |\n", kind, c.Rule, cell(c.Element), cell(c.Message), cell(c.Position()))
	}
	return nil
}

// diffChange is a change in the output of "diff --format json".
type diffChange struct {
	Kind    catalog.ChangeKind `json:"kind"`
	Rule    catalog.Rule       `json:"rule"`
	Element string             `json:"element"`
	Message string             `json:"message"`
	File    string             `json:"file"`
	Line    int                `json:"line,omitempty"`
	Column  int                `json:"column,omitempty"`
}

func writeDiffJSON(w io.Writer, changes []catalog.Change) error {
	out := struct {
		Summary diffSummary  `json:"summary"`
		Changes []diffChange `json:"changes"`
	}{Summary: summarize(changes), Changes: make([]diffChange, 0, len(changes))}
	for _, c := range changes {
		out.Changes = append(out.Changes, diffChange{c.Kind, c.Rule, c.Element, c.Message, c.File, c.Line, c.Column})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// defaultBuf is buf on the PATH, or else, in this repository, buf as the
// Makefile runs it.
func defaultBuf() string {
	if _, err := exec.LookPath("buf"); err == nil {
		return "buf"
	}
	if _, err := os.Stat("tools/go.mod"); err == nil {
		return "go tool -modfile=tools/go.mod buf"
	}
	return "buf"
}
