package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/vanguard"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Handler serves the REST routes of a set of services in front of the
// handler of their RPCs. Build it with [New]; it is safe for concurrent
// use.
type Handler struct {
	next       http.Handler
	transcoder *vanguard.Transcoder
	services   map[string]struct{} // "/pkg.Service/"
	routes     router
	bindings   []Binding
}

// New returns a handler that serves the REST routes that the google.api.http
// options of services declare, each transcoded into a Connect call to next
// at the method's RPC path, and passes every other request to next
// unchanged: RPCs of any protocol, and paths that are no REST route.
//
// next is the handler of the services' RPCs, such as a mux of the gateway's
// forwarding handlers: the transcoded call goes through its authentication,
// authorization, rate limits and telemetry like any RPC, and its refusals
// come back as REST errors. The descriptors may be compiled in or loaded at
// run time; options are read whatever form the descriptors hold them in.
//
// New fails when a rule is invalid (a template or a field path that does
// not resolve), when two bindings take the same method and path, or when a
// REST path would fall under a service's RPC path ("/pkg.Service/...").
func New(services []protoreflect.ServiceDescriptor, next http.Handler, opts ...Option) (*Handler, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, errors.New("rest: nil next handler")
	}
	h := &Handler{next: next, services: make(map[string]struct{}, len(services))}
	var errs []error
	var vs []*vanguard.Service
	var rules []*annotations.HttpRule // those the transcoder cannot read itself
	for _, svc := range services {
		if svc == nil {
			errs = append(errs, errors.New("rest: nil service descriptor"))
			continue
		}
		prefix := "/" + string(svc.FullName()) + "/"
		if _, dup := h.services[prefix]; dup {
			errs = append(errs, fmt.Errorf("rest: service %s given twice", svc.FullName()))
			continue
		}
		h.services[prefix] = struct{}{}
		methods := svc.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			rule, err := httpRule(md)
			if err != nil {
				errs = append(errs, fmt.Errorf("rest: %w", err))
				continue
			}
			if rule == nil {
				continue
			}
			bs, err := bindings(md, rule)
			if err != nil {
				errs = append(errs, fmt.Errorf("rest: %w", err))
				continue
			}
			h.bindings = append(h.bindings, bs...)
			if !vanguardSees(md) {
				selected := proto.CloneOf(rule)
				selected.Selector = string(md.FullName())
				rules = append(rules, selected)
			}
		}
		svcOpts := []vanguard.ServiceOption{
			vanguard.WithTargetProtocols(vanguard.ProtocolConnect, vanguard.ProtocolGRPC, vanguard.ProtocolGRPCWeb),
			vanguard.WithTargetCodecs(cfg.codec),
			vanguard.WithMaxMessageBufferBytes(cfg.maxMessageBytes),
		}
		if cfg.types != nil {
			svcOpts = append(svcOpts, vanguard.WithTypeResolver(cfg.types))
		}
		vs = append(vs, vanguard.NewServiceWithSchema(svc, next, svcOpts...))
	}
	for i := range h.bindings {
		b := &h.bindings[i]
		if first, _, _ := strings.Cut(strings.TrimPrefix(b.Template, "/"), "/"); first != "" {
			if _, clash := h.services["/"+first+"/"]; clash {
				errs = append(errs, fmt.Errorf("rest: %s %s of %s is under an RPC path", b.Method, b.Template, b.Procedure))
				continue
			}
		}
		if err := h.routes.insert(b); err != nil {
			errs = append(errs, fmt.Errorf("rest: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	topts := []vanguard.TranscoderOption{vanguard.WithUnknownHandler(next), vanguard.WithCodec(newJSONCodec)}
	if len(rules) > 0 {
		topts = append(topts, vanguard.WithRules(rules...))
	}
	if h.transcoder, err = vanguard.NewTranscoder(vs, topts...); err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	return h, nil
}

// ServeHTTP serves a REST request through the transcoder and passes every
// other request to the next handler as it came.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, rpc := h.services[servicePrefix(r.URL.Path)]; rpc {
		h.next.ServeHTTP(w, r) // an RPC: never decoded here
		return
	}
	b, methods := h.routes.match(r.Method, r.URL.Path)
	if b == nil && methods == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	if b == nil {
		h.transcoder.ServeHTTP(w, r) // 405 Method Not Allowed
		return
	}
	if r.URL.RawQuery != "" {
		if err := checkQuery(b.input, r.URL.RawQuery); err != nil {
			writeInvalidArgument(w, err)
			return
		}
	}
	c := &call{binding: b, w: errorWriter{w}}
	h.transcoder.ServeHTTP(&c.w, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
}

// call is what a REST call carries through the transcoder, in one
// allocation.
type call struct {
	binding *Binding
	w       errorWriter
}

// ServicePath returns the path prefix of the service ("/pkg.Service/")
// that serves method on path: the service itself for its RPC paths, and
// the service of the REST binding that path matches. It is the route
// resolver of CORS policies per service.
func (h *Handler) ServicePath(method, path string) (string, bool) {
	if prefix := servicePrefix(path); prefix != "" {
		if _, ok := h.services[prefix]; ok {
			return prefix, true
		}
	}
	b, _ := h.routes.match(method, path)
	if b == nil {
		return "", false
	}
	return servicePrefix(b.Procedure), true
}

// Bindings returns the REST routes, in the order of the services and
// their methods, each rule before its additional bindings.
func (h *Handler) Bindings() []Binding {
	return append([]Binding(nil), h.bindings...)
}

type callKey struct{}

// FromContext returns the REST binding through which the call in ctx came,
// for the handlers behind a [Handler] (the gateway's telemetry and access
// log); ok is false for an RPC.
func FromContext(ctx context.Context) (b Binding, ok bool) {
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok {
		return Binding{}, false
	}
	return *c.binding, true
}

// servicePrefix returns the first segment of path with its slashes,
// "/pkg.Service/" for an RPC path, or "".
func servicePrefix(path string) string {
	if len(path) < 2 || path[0] != '/' {
		return ""
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return ""
	}
	return path[:end+2]
}

// vanguardSees reports whether the transcoder reads the method's rule
// itself: when the option is decoded in the descriptor's options. Options
// held as unknown fields, as in descriptors decoded without the extension
// linked in, are handed to it as rules instead.
func vanguardSees(md protoreflect.MethodDescriptor) bool {
	opts := md.Options()
	return opts != nil && opts.ProtoReflect().Has(annotations.E_Http.TypeDescriptor())
}
