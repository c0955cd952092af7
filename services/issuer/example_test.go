package issuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	adminv1 "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
	"github.com/portcullis/portcullis/gen/portcullis/admin/v1/adminv1connect"
	"github.com/portcullis/portcullis/services/issuer"
)

func ExampleNew() {
	// The catalog of the compiled-in services names the permissions.
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "issuer")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	registry := filepath.Join(dir, "clients.yaml")

	// Register a client; its secret is shown once and stored hashed.
	secret, err := issuer.AddClient(registry, cat, issuer.Client{
		ID:     "billing-sync",
		Grants: []string{"LIC.READ_ORDERS", "ORD.READ"},
		Tier:   "pro",
	})
	if err != nil {
		log.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    "http://" + l.Addr().String(),
		Audience:     "portcullis",
		KeyDir:       filepath.Join(dir, "keys"), // a first ES256 key is generated
		RegistryPath: registry,
	}, cat, issuer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	go http.Serve(l, srv.Handler())

	// Any OAuth 2.0 client gets a token, here asking for one permission.
	cfg := clientcredentials.Config{
		ClientID:     "billing-sync",
		ClientSecret: secret,
		TokenURL:     srv.TokenURL(),
		Scopes:       []string{"ORD.READ"},
	}
	token, err := cfg.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(token.TokenType, token.Extra("scope"))

	// The claims the gateway reads (verify the signature in real code).
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token.AccessToken, ".")[1])
	var claims struct {
		Sub   string            `json:"sub"`
		Perms map[string]uint64 `json:"perms"`
		Tier  string            `json:"tier"`
	}
	json.Unmarshal(payload, &claims)
	fmt.Println(claims.Sub, claims.Perms, claims.Tier)
	// Output:
	// Bearer ORD.READ
	// billing-sync map[ORD:1] pro
}

func ExampleWithAdmin() {
	cat, err := catalog.New(protoregistry.GlobalFiles) // holds portcullis.admin.v1
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "issuer")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	registry := filepath.Join(dir, "clients.yaml")

	// The first administrator is registered by hand; it may grant what it
	// holds.
	secret, err := issuer.AddClient(registry, cat, issuer.Client{
		ID:     "provisioner",
		Grants: []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS", "ORD.READ"},
	})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:    "http://" + l.Addr().String(),
		Audience:     "portcullis",
		KeyDir:       filepath.Join(dir, "keys"),
		RegistryPath: registry,
	}, cat, issuer.WithAdmin(), issuer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	go http.Serve(l, srv.Handler())

	// The administrator's token authorizes its calls to the service.
	cfg := clientcredentials.Config{ClientID: "provisioner", ClientSecret: secret, TokenURL: srv.TokenURL()}
	admin := adminv1connect.NewClientAdminServiceClient(cfg.Client(context.Background()), srv.Issuer())
	ctx := context.Background()
	created, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "billing-sync", Grants: []string{"ORD.READ"}}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created.Msg.GetClient().GetId(), created.Msg.GetClient().GetGrants(), len(created.Msg.GetSecret()))

	_, err = admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "too-mighty", Grants: []string{"ORD.WRITE"}}))
	fmt.Println(connect.CodeOf(err), err)
	// Output:
	// billing-sync [ORD.READ] 43
	// permission_denied permission_denied: cannot grant ORD.WRITE: the caller's token does not hold it
}
