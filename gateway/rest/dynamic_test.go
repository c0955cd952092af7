package rest_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/rest"
	"github.com/portcullis/portcullis/internal/prototest"
)

var librarySources = map[string]string{"library/v1/library.proto": libraryProto}

// libraryForms are the library service's descriptors in the forms a
// gateway may hold them in.
func libraryForms(t *testing.T) map[string]*protoregistry.Files {
	t.Helper()
	// Options as unknown fields: decoded without google.api.http known.
	set := prototest.Set(t, librarySources)
	data, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	undecoded := new(descriptorpb.FileDescriptorSet)
	if err := (proto.UnmarshalOptions{Resolver: new(protoregistry.Types)}).Unmarshal(data, undecoded); err != nil {
		t.Fatal(err)
	}
	unknown, err := protodesc.NewFiles(undecoded)
	if err != nil {
		t.Fatal(err)
	}
	image, err := catalog.LoadImage(prototest.WriteImage(t, librarySources))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*protoregistry.Files{
		"compiled":          prototest.Files(t, librarySources),
		"buf image":         image,
		"options undecoded": unknown,
	}
}

func libraryService(t *testing.T, files *protoregistry.Files) protoreflect.ServiceDescriptor {
	t.Helper()
	d, err := files.FindDescriptorByName("library.v1.LibraryService")
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.ServiceDescriptor)
}

// TestDynamicDescriptors serves every kind of binding from descriptors
// loaded at run time, whatever form their options are in.
func TestDynamicDescriptors(t *testing.T) {
	t.Parallel()
	const rpc = "/library.v1.LibraryService/"
	tests := []struct {
		name, method, path, body string
		binding                  string
		want                     map[string]any
		absent                   []string
	}{
		{
			name: "path variable over several segments", method: "GET", path: "/v1/shelves/s1/books/b1",
			binding: "GET /v1/{name=shelves/*/books/*} " + rpc + "GetBook",
			want:    map[string]any{"name": "shelves/s1/books/b1", "parent": "", "pageSize": 0.0},
		},
		{
			name: "escaped path variable", method: "GET", path: "/v1/shelves/s%201/books/b%C3%A9",
			want: map[string]any{"name": "shelves/s 1/books/bé"},
		},
		{
			name: "query: scalar, repeated, nested, proto and JSON names", method: "GET", path: "/v1/shelves/s1/books?page_size=10&tags=a&tags=b&filter.name=Le%20Guin",
			binding: "GET /v1/{parent=shelves/*}/books " + rpc + "ListBooks",
			want:    map[string]any{"parent": "shelves/s1", "pageSize": 10.0, "tags.0": "a", "tags.1": "b", "filter.name": "Le Guin"},
		},
		{
			name: "additional binding", method: "GET", path: "/v1/books?pageSize=5",
			binding: "GET /v1/books " + rpc + "ListBooks",
			want:    map[string]any{"parent": "", "pageSize": 5.0},
		},
		{
			name: "named body field and response_body", method: "POST", path: "/v1/shelves/s1/books", body: `{"title":"Dune","author":{"name":"Herbert"},"pages":412}`,
			binding: "POST /v1/{parent=shelves/*}/books " + rpc + "CreateBook",
			want:    map[string]any{"title": "Dune", "author.name": "Herbert", "pages": 412.0},
			absent:  []string{"parent", "book"},
		},
		{
			name: "nested path variable into the body field", method: "PATCH", path: "/v1/shelves/s1/books/b1", body: `{"title":"Dune Messiah"}`,
			want: map[string]any{"book.name": "shelves/s1/books/b1", "book.title": "Dune Messiah"},
		},
		{
			name: "DELETE", method: "DELETE", path: "/v1/shelves/s1/books/b1",
			want: map[string]any{"name": "shelves/s1/books/b1"},
		},
		{
			name: "custom verb with body *", method: "POST", path: "/v1/shelves/s1/books/b1:publish", body: `{"pageSize":3,"tags":["new"]}`,
			binding: "POST /v1/{name=shelves/*/books/*}:publish " + rpc + "PublishBook",
			want:    map[string]any{"name": "shelves/s1/books/b1", "pageSize": 3.0, "tags.0": "new"},
		},
		{
			name: "** variable", method: "GET", path: "/v1/files/a/b/c.txt",
			want: map[string]any{"path": "a/b/c.txt"},
		},
		{
			name: "custom method", method: "LINK", path: "/v1/shelves/s1/books/b1",
			binding: "LINK /v1/{name=shelves/*/books/*} " + rpc + "LinkBook",
			want:    map[string]any{"name": "shelves/s1/books/b1"},
		},
	}
	for form, files := range libraryForms(t) {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			svc := libraryService(t, files)
			if form == "options undecoded" && svc.Methods().ByName("GetBook").Options().ProtoReflect().Has(annotations.E_Http.TypeDescriptor()) {
				t.Fatal("the options were decoded: the test would not cover undecoded options")
			}
			h, err := rest.New([]protoreflect.ServiceDescriptor{svc}, echoHandler(svc), rest.WithTypeResolver(dynamicpb.NewTypes(files)))
			if err != nil {
				t.Fatal(err)
			}
			url := h2ctest.Serve(t, h)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					resp, body := call(t, tt.method, url+tt.path, "", tt.body)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d, body %s", resp.StatusCode, body)
					}
					if tt.binding != "" && resp.Header.Get("X-Binding") != tt.binding {
						t.Errorf("binding seen by the handler %q, want %q", resp.Header.Get("X-Binding"), tt.binding)
					}
					got := decode(t, body)
					for path, want := range tt.want {
						if v := get(got, jsonPath(path)...); v != want {
							t.Errorf("%s = %#v, want %#v in %s", path, v, want, body)
						}
					}
					for _, key := range tt.absent {
						if _, ok := got[key]; ok {
							t.Errorf("body has %q: %s", key, body)
						}
					}
				})
			}
		})
	}
}

func TestServicePath(t *testing.T) {
	t.Parallel()
	svc := libraryService(t, prototest.Files(t, librarySources))
	h, err := rest.New([]protoreflect.ServiceDescriptor{svc}, echoHandler(svc))
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "/library.v1.LibraryService/"
	tests := []struct {
		method, path string
		want         string // "" for none
	}{
		{"GET", "/v1/shelves/s1/books/b1", prefix},
		{"DELETE", "/v1/shelves/s1/books/b1", prefix},
		{"LINK", "/v1/shelves/s1/books/b1", prefix},
		{"POST", "/v1/shelves/s1/books/b1:publish", prefix},
		{"GET", "/v1/files/a/b", prefix},
		{"POST", prefix + "GetBook", prefix},
		{"PUT", "/v1/shelves/s1/books/b1", ""},
		{"GET", "/v1/shelves/s1", ""},
		{"GET", "/v2/books", ""},
		{"POST", "/other.v1.Other/Method", ""},
	}
	for _, tt := range tests {
		got, ok := h.ServicePath(tt.method, tt.path)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ServicePath(%s, %s) = %q, %v; want %q", tt.method, tt.path, got, ok, tt.want)
		}
	}
	var templates []string
	for _, b := range h.Bindings() {
		templates = append(templates, b.Method+" "+b.Template)
	}
	want := []string{
		"GET /v1/{name=shelves/*/books/*}", "GET /v1/{parent=shelves/*}/books", "GET /v1/books",
		"POST /v1/{parent=shelves/*}/books", "PATCH /v1/{book.name=shelves/*/books/*}",
		"DELETE /v1/{name=shelves/*/books/*}", "POST /v1/{name=shelves/*/books/*}:publish",
		"GET /v1/files/{path=**}", "LINK /v1/{name=shelves/*/books/*}",
	}
	if !slices.Equal(templates, want) {
		t.Errorf("Bindings\n got %q\nwant %q", templates, want)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	bound := func(rule string) string {
		return strings.Replace(libraryProto, `rpc Unbound(BookRequest) returns (BookRequest);`,
			`rpc Unbound(BookRequest) returns (BookRequest) { option (google.api.http) = `+rule+`; }`, 1)
	}
	tests := []struct {
		name   string
		source string
		next   http.Handler
		opts   []rest.Option
		want   string
	}{
		{name: "template under an RPC path", source: bound(`{get: "/library.v1.LibraryService/x"}`), want: "GET /library.v1.LibraryService/x of /library.v1.LibraryService/Unbound is under an RPC path"},
		{name: "same method and path twice", source: bound(`{get: "/v1/books"}`), want: "GET /v1/books of /library.v1.LibraryService/Unbound is also bound by /library.v1.LibraryService/ListBooks"},
		{name: "unknown field in the path", source: bound(`{get: "/v1/{title}"}`), want: `"title"`},
		{name: "unknown body field", source: bound(`{post: "/v1/x" body: "nope"}`), want: `"nope"`},
		{name: "unbalanced template", source: bound(`{get: "/v1/{name"}`), want: "unbalanced {"},
		{name: "nil next handler", source: libraryProto, want: "rest: nil next handler"},
		{name: "zero message limit", source: libraryProto, opts: []rest.Option{rest.WithMaxMessageBytes(0)}, want: "max message bytes 0 is not from 1 to 4294967295"},
		{name: "unknown codec", source: libraryProto, opts: []rest.Option{rest.WithTargetCodec("xml")}, want: `target codec "xml" is neither proto nor json`},
		{name: "nil type resolver", source: libraryProto, opts: []rest.Option{rest.WithTypeResolver(nil)}, want: "nil type resolver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := libraryService(t, prototest.Files(t, map[string]string{"library/v1/library.proto": tt.source}))
			next := http.Handler(http.NotFoundHandler())
			if tt.name == "nil next handler" {
				next = nil
			}
			_, err := rest.New([]protoreflect.ServiceDescriptor{svc}, next, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error holding %q", err, tt.want)
			}
		})
	}
}

func TestMaxMessageBytes(t *testing.T) {
	t.Parallel()
	svc := libraryService(t, prototest.Files(t, librarySources))
	h, err := rest.New([]protoreflect.ServiceDescriptor{svc}, echoHandler(svc), rest.WithMaxMessageBytes(256))
	if err != nil {
		t.Fatal(err)
	}
	url := h2ctest.Serve(t, h)
	resp, body := call(t, "POST", url+"/v1/shelves/s1/books", "", `{"title":"`+strings.Repeat("x", 300)+`"}`)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"code":8`) {
		t.Errorf("status %d body %s, want 429 ResourceExhausted", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", url+"/v1/shelves/s1/books", "", `{"title":"short"}`); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d body %s under the limit", resp.StatusCode, body)
	}
}
