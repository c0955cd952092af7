package gateway

import (
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
)

// loadFiles merges the descriptor sources: images first, then the
// compiled-in files they do not already hold.
func loadFiles(d config.Descriptors, extra []*protoregistry.Files) (*protoregistry.Files, error) {
	sources := extra
	for _, image := range d.Images {
		files, err := catalog.LoadImage(image)
		if err != nil {
			return nil, err
		}
		sources = append(sources, files)
	}
	if d.UseCompiledIn() {
		sources = append(sources, protoregistry.GlobalFiles)
	}
	if len(sources) == 1 {
		return sources[0], nil
	}
	merged := new(protoregistry.Files)
	var errs []error
	for _, files := range sources {
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			if _, err := merged.FindFileByPath(fd.Path()); err == nil {
				return true // an earlier source has it
			}
			if err := merged.RegisterFile(fd); err != nil {
				errs = append(errs, fmt.Errorf("descriptors: %s: %w", fd.Path(), err))
			}
			return true
		})
	}
	return merged, errors.Join(errs...)
}

// filesOf returns a registry of the files that declare services and of
// everything they import.
func filesOf(services []protoreflect.ServiceDescriptor) (*protoregistry.Files, error) {
	files := new(protoregistry.Files)
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := files.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := add(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return files.RegisterFile(fd)
	}
	for _, s := range services {
		if err := add(s.ParentFile()); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// newCatalog builds the catalog for the routed services: a problem in one
// of them, or in a domain one of their methods requires, stops the gateway;
// any other is logged as a warning, and the services it touches, which no
// route names, are left out. Names that are not valid are left to
// routedServices to report.
func newCatalog(files *protoregistry.Files, routes []config.Route, logger *slog.Logger) (*catalog.Catalog, error) {
	var routed []protoreflect.FullName
	for _, r := range routes {
		if name := protoreflect.FullName(r.Service); name.IsValid() {
			routed = append(routed, name)
		}
	}
	cat, err := catalog.New(files, catalog.WithServices(routed...))
	if err != nil {
		return nil, err
	}
	for _, p := range cat.Warnings() {
		logger.Warn("descriptors: problem outside the routed services", "problem", p)
	}
	return cat, nil
}

// routedServices finds each route's service among the catalog's services,
// failing closed on any the catalog does not govern.
func routedServices(routes []config.Route, cat *catalog.Catalog) ([]protoreflect.ServiceDescriptor, error) {
	governed := make(map[protoreflect.FullName]protoreflect.ServiceDescriptor)
	for _, s := range cat.Services() {
		governed[s.FullName()] = s
	}
	services := make([]protoreflect.ServiceDescriptor, len(routes))
	var errs []error
	for i, r := range routes {
		name := protoreflect.FullName(r.Service)
		s, ok := governed[name]
		if !ok {
			reason := "is not in the descriptors"
			if d, err := cat.Files().FindDescriptorByName(name); err == nil {
				if _, isService := d.(protoreflect.ServiceDescriptor); isService {
					reason = fmt.Sprintf("declares no access: its file %s does not import gateway/v1/options.proto", d.ParentFile().Path())
				} else {
					reason = "is not a service"
				}
			}
			errs = append(errs, fmt.Errorf("routes[%d].service: %s %s", i, r.Service, reason))
			continue
		}
		services[i] = s
	}
	return services, errors.Join(errs...)
}

// newReflector answers gRPC reflection for the routed services and the
// files they need, never for other descriptors the gateway happens to hold.
func newReflector(services []protoreflect.ServiceDescriptor) (*grpcreflect.Reflector, error) {
	reflected, err := filesOf(services)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = string(s.FullName())
	}
	return grpcreflect.NewReflector(grpcreflect.NamerFunc(func() []string { return names }),
		grpcreflect.WithDescriptorResolver(reflected), grpcreflect.WithExtensionResolver(protoregistry.GlobalTypes)), nil
}

// procedures returns the procedure of every method of services.
func procedures(services []protoreflect.ServiceDescriptor) []string {
	var out []string
	for _, s := range services {
		methods := s.Methods()
		for i := range methods.Len() {
			out = append(out, "/"+string(s.FullName())+"/"+string(methods.Get(i).Name()))
		}
	}
	return out
}
