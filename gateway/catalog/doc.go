// Package catalog reads the access that services declare in their protobuf
// options and turns it into an immutable table the gateway consults on
// every call.
//
// Teams declare permission domains as enums annotated with
// (gateway.v1.domain), permissions as enum values annotated with
// (gateway.v1.permission), and each method's needs with (gateway.v1.access)
// or its service's (gateway.v1.default_access). [New] validates all of it at
// once and precomputes, for every method, one required mask per domain, so
// that authorizing a call is a map lookup and a few AND operations:
//
//	cat, err := catalog.New(protoregistry.GlobalFiles)
//	if err != nil {
//		log.Fatal(err) // every problem, each naming file, element and rule
//	}
//	m, ok := cat.Method("/example.licensing.v1.LicensingService/ListRequirements")
//	if ok && m.Allows(map[string]uint64{"LIC": 3}) {
//		// the caller holds every permission the method requires
//	}
//
// A gateway builds its catalog [WithServices], naming the services it
// routes. A problem in their methods, or in a domain their methods require,
// still stops it; any other problem, such as a method without access in a
// service it does not route, is a warning ([Catalog.Warnings]), and the
// services it touches are left out. A [Problem] gives its line and column
// when the descriptors carry source info, as buf images do by default.
//
// [Rules] lists the rules [New] enforces and [ChangeRules] those of [Diff],
// which compares two catalogs: a method that became public or requires
// less, a mask given to another permission ([Loosened]); a mask or domain
// name that tokens already carry and that changed ([Breaking]); a method
// that requires more ([Tightened]); methods added and removed. The
// portcullis command's check and diff, and the buf plugin
// (cmd/buf-plugin-portcullis) that runs the same rules under buf lint and
// buf breaking, all report these.
//
// Descriptors may be compiled in (protoregistry.GlobalFiles) or loaded at
// run time from a buf image with [LoadImage], so a gateway can enforce the
// access of services it was not compiled with.
package catalog
