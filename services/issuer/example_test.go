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

	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
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
