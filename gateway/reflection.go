package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/portcullis/portcullis/gateway/config"
	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
)

// reflectionTimeout bounds one fetch of a backend's descriptors.
const reflectionTimeout = 5 * time.Second

// optionsPath is the file of the gateway's own options. Its descriptors
// are always the compiled-in ones: a backend's copy is only checked.
const optionsPath = "gateway/v1/options.proto"

// reflected is what a route's backend said of its service: the file that
// declares it and the files it imports, as sent.
type reflected struct {
	service string
	backend string
	files   []*descriptorpb.FileDescriptorProto
}

func reflectionKey(r config.Route) string { return r.Service + " " + r.Backend }

// addReflection adds to files, for each route with descriptors
// reflection, the descriptors its backend's gRPC reflection gives of its
// service, trusted for that service alone: a file of them that declares
// another routed service, or a gateway/v1/options.proto whose access
// declarations differ from the compiled-in ones, refuses them. A backend
// that cannot be reached keeps the descriptors the generation before had
// from it, if any; else the generation cannot be built. files is not
// changed: the result is a new registry when a route uses reflection.
func (g *generation) addReflection(ctx context.Context, files *protoregistry.Files, routes []config.Route) (*protoregistry.Files, error) {
	var idx []int
	for i, r := range routes {
		if r.Descriptors == config.DescriptorsReflection {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return files, nil
	}
	merged := new(protoregistry.Files)
	var errs []error
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		errs = append(errs, merged.RegisterFile(fd))
		return true
	})
	if _, err := merged.FindFileByPath(optionsPath); err != nil {
		errs = append(errs, registerWithImports(merged, gatewayv1.File_gateway_v1_options_proto))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("descriptors: %w", err)
	}
	routed := make(map[string]int, len(routes))
	for i, r := range routes {
		routed[r.Service] = i
	}
	g.reflected = make(map[string]reflected, len(idx))
	for _, i := range idx {
		r := routes[i]
		got, err := fetchReflection(ctx, r)
		if err != nil {
			old, ok := g.prev.reflectedOf(r)
			if !ok {
				errs = append(errs, fmt.Errorf("routes[%d]: the backend's reflection: %w", i, err))
				continue
			}
			g.logger.Warn("descriptors: the backend's reflection failed: keeping the descriptors it gave before", "route", i, "service", r.Service, "error", err)
			got = old.files
		}
		if err := addReflected(merged, got, routes, routed, i); err != nil {
			errs = append(errs, fmt.Errorf("routes[%d]: the backend's descriptors are refused: %w", i, err))
			continue
		}
		g.reflected[reflectionKey(r)] = reflected{service: r.Service, backend: r.Backend, files: got}
	}
	return merged, errors.Join(errs...)
}

// reflectedOf returns what r's backend gave g, if anything.
func (g *generation) reflectedOf(r config.Route) (reflected, bool) {
	if g == nil {
		return reflected{}, false
	}
	got, ok := g.reflected[reflectionKey(r)]
	return got, ok
}

// registerWithImports registers fd, after the files it imports that
// files does not hold yet.
func registerWithImports(files *protoregistry.Files, fd protoreflect.FileDescriptor) error {
	if _, err := files.FindFileByPath(fd.Path()); err == nil {
		return nil
	}
	imports := fd.Imports()
	for i := range imports.Len() {
		if err := registerWithImports(files, imports.Get(i).FileDescriptor); err != nil {
			return err
		}
	}
	return files.RegisterFile(fd)
}

// addReflected registers in files the reflected files of routes[i]: the
// gateway's own options and the files files already holds by path are
// kept as they are; a new file may declare no service another route
// routes.
func addReflected(files *protoregistry.Files, got []*descriptorpb.FileDescriptorProto, routes []config.Route, routed map[string]int, i int) error {
	byName := make(map[string]*descriptorpb.FileDescriptorProto, len(got))
	for _, f := range got {
		byName[f.GetName()] = f
	}
	if opts, ok := byName[optionsPath]; ok {
		if err := sameAccess(opts); err != nil {
			return err
		}
	}
	declared := false
	visiting := map[string]bool{}
	var add func(name string) error
	add = func(name string) error {
		if _, err := files.FindFileByPath(name); err == nil {
			return nil
		}
		f, ok := byName[name]
		if !ok {
			return fmt.Errorf("the backend did not send %s", name)
		}
		if visiting[name] {
			return fmt.Errorf("%s imports itself", name)
		}
		visiting[name] = true
		for _, dep := range f.GetDependency() {
			if err := add(dep); err != nil {
				return err
			}
		}
		for _, s := range f.GetService() {
			full := s.GetName()
			if p := f.GetPackage(); p != "" {
				full = p + "." + full
			}
			if j, ok := routed[full]; ok && j != i {
				return fmt.Errorf("%s declares %s, which routes[%d] routes: a backend describes its own service only", name, full, j)
			}
			declared = declared || full == routes[i].Service
		}
		fd, err := protodesc.NewFile(f, files)
		if err != nil {
			return err
		}
		return files.RegisterFile(fd)
	}
	for _, f := range got {
		for _, s := range f.GetService() {
			if f.GetPackage()+"."+s.GetName() == routes[i].Service {
				if err := add(f.GetName()); err != nil {
					return err
				}
			}
		}
	}
	if !declared {
		return fmt.Errorf("no file the backend sent declares %s, or one the gateway holds already does", routes[i].Service)
	}
	return nil
}

// sameAccess checks that a backend's copy of gateway/v1/options.proto
// declares nothing the compiled-in one does not, under the same names,
// numbers and types: its messages and its extensions. An older copy, with
// fewer fields, passes; the method options are read with the compiled-in
// one either way.
func sameAccess(theirs *descriptorpb.FileDescriptorProto) error {
	ours := protodesc.ToFileDescriptorProto(gatewayv1.File_gateway_v1_options_proto)
	if theirs.GetPackage() != ours.GetPackage() {
		return fmt.Errorf("%s: package %q, want %q", optionsPath, theirs.GetPackage(), ours.GetPackage())
	}
	if err := sameFields("extension", theirs.GetExtension(), ours.GetExtension()); err != nil {
		return fmt.Errorf("%s differs from the gateway's: %w", optionsPath, err)
	}
	for _, m := range theirs.GetMessageType() {
		i := slices.IndexFunc(ours.GetMessageType(), func(o *descriptorpb.DescriptorProto) bool { return o.GetName() == m.GetName() })
		if i < 0 {
			return fmt.Errorf("%s differs from the gateway's: message %s is unknown", optionsPath, m.GetName())
		}
		if err := sameFields("message "+m.GetName(), m.GetField(), ours.GetMessageType()[i].GetField()); err != nil {
			return fmt.Errorf("%s differs from the gateway's: %w", optionsPath, err)
		}
	}
	return nil
}

func sameFields(where string, theirs, ours []*descriptorpb.FieldDescriptorProto) error {
	for _, f := range theirs {
		i := slices.IndexFunc(ours, func(o *descriptorpb.FieldDescriptorProto) bool { return o.GetName() == f.GetName() })
		if i < 0 {
			return fmt.Errorf("%s: field %s is unknown", where, f.GetName())
		}
		o := ours[i]
		if f.GetNumber() != o.GetNumber() || f.GetType() != o.GetType() || f.GetLabel() != o.GetLabel() ||
			strings.TrimPrefix(f.GetTypeName(), ".") != strings.TrimPrefix(o.GetTypeName(), ".") ||
			strings.TrimPrefix(f.GetExtendee(), ".") != strings.TrimPrefix(o.GetExtendee(), ".") {
			return fmt.Errorf("%s: field %s is not the gateway's", where, f.GetName())
		}
	}
	return nil
}

// fetchReflection asks r's backend, over gRPC reflection (v1, else
// v1alpha), for the file declaring r's service and the files it imports,
// the declaring file first.
func fetchReflection(ctx context.Context, r config.Route) ([]*descriptorpb.FileDescriptorProto, error) {
	client, err := reflectionClient(r)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, reflectionTimeout)
	defer cancel()
	stream := grpcreflect.NewClient(client, strings.TrimSuffix(r.Backend, "/"), connect.WithGRPC()).NewStream(ctx)
	defer stream.Close()
	first, err := stream.FileContainingSymbol(protoreflect.FullName(r.Service))
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, errors.New("no file declares the service")
	}
	out := slices.Clone(first)
	have := make(map[string]bool)
	for _, f := range out {
		have[f.GetName()] = true
	}
	for i := 0; i < len(out); i++ {
		for _, dep := range out[i].GetDependency() {
			if have[dep] {
				continue
			}
			more, err := stream.FileByFilename(dep)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", dep, err)
			}
			for _, f := range more {
				if !have[f.GetName()] {
					have[f.GetName()] = true
					out = append(out, f)
				}
			}
		}
	}
	return out, nil
}

// reflectionClient returns an HTTP/2 client for r's backend: h2c for
// http://, TLS (with r's CAs, if any) for https://.
func reflectionClient(r config.Route) (*http.Client, error) {
	t := &http.Transport{Protocols: new(http.Protocols)}
	if strings.HasPrefix(r.Backend, "https://") {
		t.Protocols.SetHTTP2(true)
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if r.CAFile != "" {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s holds no PEM certificate", r.CAFile)
			}
		}
		t.TLSClientConfig = cfg
	} else {
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: t}, nil
}

// checkReflectionPins refuses the descriptors of a route with
// reflection_allow_public false that make one of its methods public.
func (g *generation) checkReflectionPins(routes []config.Route, services []protoreflect.ServiceDescriptor) error {
	var errs []error
	for i, r := range routes {
		if r.Descriptors != config.DescriptorsReflection || r.ReflectionAllowPublic {
			continue
		}
		methods := services[i].Methods()
		for j := range methods.Len() {
			procedure := "/" + r.Service + "/" + string(methods.Get(j).Name())
			if m, ok := g.catalog.Method(procedure); ok && m.Public {
				errs = append(errs, fmt.Errorf("routes[%d]: the backend's descriptors make %s public, and reflection_allow_public is false", i, procedure))
			}
		}
	}
	return errors.Join(errs...)
}

// sameReflection reports whether two answers of a backend are the same.
func sameReflection(a, b []*descriptorpb.FileDescriptorProto) bool {
	return slices.EqualFunc(a, b, func(x, y *descriptorpb.FileDescriptorProto) bool { return proto.Equal(x, y) })
}

// refreshReflection asks, every reflection_refresh, the backends of the
// routes with descriptors reflection for their descriptors again, and
// reloads the serving configuration when one changed: the same path as a
// reload, so that descriptors refused keep the generation serving. A
// backend that does not answer keeps it too, and is logged and counted as
// a failed reload. It stops when the gateway closes.
func (g *Gateway) refreshReflection() {
	ctx, cancel := context.WithCancel(g.life)
	done := make(chan struct{})
	g.closers = append(g.closers, func() error { cancel(); <-done; return nil })
	go func() {
		defer close(done)
		next := make(map[string]time.Time)
		refused := make(map[string][]*descriptorpb.FileDescriptorProto) // answers a reload refused, not tried again
		timer := time.NewTimer(time.Second)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			gen := g.current()
			wait := time.Second
			var changed []string
			for i, r := range gen.cfg.Routes {
				if r.Descriptors != config.DescriptorsReflection {
					continue
				}
				wait = min(wait, r.ReflectionRefresh.Std())
				key := reflectionKey(r)
				if at, ok := next[key]; ok && time.Now().Before(at) {
					continue
				}
				next[key] = time.Now().Add(r.ReflectionRefresh.Std())
				got, err := fetchReflection(ctx, r)
				if err != nil {
					if ctx.Err() == nil {
						g.logger.WarnContext(ctx, "descriptors: the backend's reflection failed: keeping its descriptors", "route", i, "service", r.Service, "error", err)
						g.reloads.Add(ctx, 1, reloadFailed)
					}
					continue
				}
				if old, ok := gen.reflectedOf(r); (!ok || !sameReflection(old.files, got)) && !sameReflection(refused[key], got) {
					changed = append(changed, key)
					refused[key] = got
				} else if ok && sameReflection(old.files, got) {
					delete(refused, key)
				}
			}
			if len(changed) > 0 {
				g.logger.InfoContext(ctx, "descriptors: a backend's reflection changed: reloading", "routes", changed)
				if _, err := g.rebuild(ctx); err == nil {
					for _, key := range changed {
						delete(refused, key)
					}
				}
			}
			timer.Reset(wait)
		}
	}()
}
