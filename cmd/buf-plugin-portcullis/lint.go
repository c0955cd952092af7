package main

import (
	"buf.build/go/bufplugin/check"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// lintHandler reports the problems of rule r in the module's files, each
// at its element.
func lintHandler(r catalog.Rule) check.RuleHandler {
	return handler(func(st *state, w check.ResponseWriter) error {
		problems, files, err := st.lint()
		if err != nil {
			return err
		}
		for _, p := range problems {
			if p.Rule != r || files.imports[p.File] {
				continue
			}
			at := check.WithFileName(p.File)
			if desc, err := files.registry.FindDescriptorByName(protoreflect.FullName(p.Element)); err == nil && desc.ParentFile().Path() == p.File {
				at = check.WithDescriptor(desc)
			}
			w.AddAnnotation(at, check.WithMessage(p.Element+": "+p.Message))
		}
		return nil
	})
}
