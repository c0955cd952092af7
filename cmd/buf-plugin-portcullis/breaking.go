package main

import (
	"buf.build/go/bufplugin/check"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// breakingHandler reports the changes of rule r to the module's files,
// each at the element as it is now and as it was.
func breakingHandler(r catalog.Rule) check.RuleHandler {
	return handler(func(st *state, w check.ResponseWriter) error {
		changes, after, err := st.diff()
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.Rule != r || c.Descriptor == nil || after.imports[c.File] {
				continue
			}
			opts := []check.AddAnnotationOption{check.WithDescriptor(c.Descriptor), check.WithMessage(c.Element + ": " + c.Message)}
			if c.Against != nil {
				opts = append(opts, check.WithAgainstDescriptor(c.Against))
			}
			w.AddAnnotation(opts...)
		}
		return nil
	})
}
