// Command buf-plugin-portcullis is a buf check plugin: `buf lint` reports,
// at its file, line and column, every problem that `portcullis check`
// reports, and `buf breaking` every change in access that loosens who may
// call what or breaks the tokens already issued.
//
// Install it on the PATH and name it in buf.yaml:
//
//	go install github.com/portcullis/portcullis/cmd/buf-plugin-portcullis@latest
//
//	# buf.yaml
//	version: v2
//	lint:
//	  use: [STANDARD, PORTCULLIS]
//	breaking:
//	  use: [FILE, PORTCULLIS]     # and PORTCULLIS_TIGHTENED to review tightening too
//	plugins:
//	  - plugin: buf-plugin-portcullis
//
// Each rule of the catalog is one lint rule, PORTCULLIS_ and its name in
// upper case (no-access is PORTCULLIS_NO_ACCESS), so that a team can
// except one. The rules are the catalog's own: the plugin builds the
// catalog of the files buf gives it with the gateway's package and reports
// its problems, so the plugin and the command cannot disagree; its
// breaking rules report the changes of catalog.Diff, which `portcullis
// diff` prints.
package main

import "buf.build/go/bufplugin/check"

func main() { check.Main(newSpec()) }
