package rest_test

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/portcullis/portcullis/gateway/rest"
)

// libraryProto declares a service with every kind of binding, for
// descriptors compiled at run time. Each method echoes its request.
const libraryProto = `
syntax = "proto3";
package library.v1;
import "google/api/annotations.proto";

message Author { string name = 1; }
message Book {
  string name = 1;
  string title = 2;
  Author author = 3;
  int32 pages = 4;
}
message BookRequest {
  string name = 1;
  string parent = 2;
  Book book = 3;
  int32 page_size = 4;
  repeated string tags = 5;
  Author filter = 6;
  string path = 7;
}

service LibraryService {
  rpc GetBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {get: "/v1/{name=shelves/*/books/*}"};
  }
  rpc ListBooks(BookRequest) returns (BookRequest) {
    option (google.api.http) = {
      get: "/v1/{parent=shelves/*}/books"
      additional_bindings: {get: "/v1/books"}
    };
  }
  rpc CreateBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {post: "/v1/{parent=shelves/*}/books" body: "book" response_body: "book"};
  }
  rpc UpdateBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {patch: "/v1/{book.name=shelves/*/books/*}" body: "book"};
  }
  rpc DeleteBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {delete: "/v1/{name=shelves/*/books/*}"};
  }
  rpc PublishBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {post: "/v1/{name=shelves/*/books/*}:publish" body: "*"};
  }
  rpc GetFile(BookRequest) returns (BookRequest) {
    option (google.api.http) = {get: "/v1/files/{path=**}"};
  }
  rpc LinkBook(BookRequest) returns (BookRequest) {
    option (google.api.http) = {custom: {kind: "LINK" path: "/v1/{name=shelves/*/books/*}"}};
  }
  rpc Unbound(BookRequest) returns (BookRequest);
}
`

// echoHandler serves every method of svc, dynamic messages in and out,
// answering with the request and, in X-Binding, the REST binding the call
// came through.
func echoHandler(svc protoreflect.ServiceDescriptor) http.Handler {
	mux := http.NewServeMux()
	methods := svc.Methods()
	for i := range methods.Len() {
		md := methods.Get(i)
		procedure := "/" + string(svc.FullName()) + "/" + string(md.Name())
		mux.Handle(procedure, connect.NewUnaryHandler(procedure,
			func(ctx context.Context, req *connect.Request[dynamicpb.Message]) (*connect.Response[dynamicpb.Message], error) {
				res := connect.NewResponse(req.Msg)
				if b, ok := rest.FromContext(ctx); ok {
					res.Header().Set("X-Binding", b.Method+" "+b.Template+" "+b.Procedure)
				}
				return res, nil
			},
			connect.WithSchema(md),
			connect.WithRequestInitializer(func(_ connect.Spec, msg any) error {
				*msg.(*dynamicpb.Message) = *dynamicpb.NewMessage(md.Input())
				return nil
			}),
		))
	}
	return mux
}
