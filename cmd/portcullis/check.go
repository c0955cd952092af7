package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// runCheck validates the catalog of every service, routed or not: exit 0
// and a summary when it is clean, exit 1 listing every problem when it is
// not, each at file:line:column when the descriptors carry source info (buf
// images do by default) and at its file and element otherwise.
func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	image := fs.String("image", "", "a buf image (buf build -o FILE); default: the compiled-in services")
	if err := parse(fs, args); err != nil {
		return err
	}
	cat, err := loadCatalog(*image)
	var invalid *catalog.ValidationError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "%d problem(s)\n", len(invalid.Problems))
		return exitError{code: 1}
	}
	if err != nil {
		return err
	}
	permissions, public := 0, 0
	for _, d := range cat.Domains() {
		permissions += len(d.Permissions)
	}
	for _, m := range cat.Methods() {
		if m.Public {
			public++
		}
	}
	fmt.Fprintf(stdout, "ok: %d domains, %d permissions, %d methods, %d public\n",
		len(cat.Domains()), permissions, len(cat.Methods()), public)
	return nil
}
