package main

import (
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"

	// The example services, and the issuer's administration service with
	// its PORTCULLIS domain, compiled in so that every command works on a
	// fresh clone without an image.
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
	_ "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
)

// loadCatalog builds the catalog of a buf image, or of the compiled-in
// descriptors when image is "".
func loadCatalog(image string) (*catalog.Catalog, error) {
	files := protoregistry.GlobalFiles
	if image != "" {
		var err error
		if files, err = catalog.LoadImage(image); err != nil {
			return nil, err
		}
	}
	return catalog.New(files)
}
