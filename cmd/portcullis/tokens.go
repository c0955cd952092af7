package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
)

const tokensUsage = `Usage:
  portcullis tokens revoke --jti JTI
  portcullis tokens revoke --client ID [--before TIME]

"revoke --jti" revokes one token, by its jti claim (the token_id of the
gateway's access lines). "revoke --client" revokes every token of a client
issued before TIME (RFC 3339, such as 2026-03-01T12:00:00Z; default now);
the client keeps its registration, and the tokens it gets afterwards work.
"portcullis clients revoke ID" removes the client and revokes its tokens.

Both take --registry FILE (default ` + defaultRegistry + `): revocations are
recorded beside it. A running issuer reads them within a second and serves
them to every gateway, which refuses the tokens from then on.
`

// runTokens revokes tokens of the token issuer.
func runTokens(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokensUsage)
		return errUsage
	}
	switch args[0] {
	case "revoke":
		return tokensRevoke(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, tokensUsage)
		return nil
	}
	fmt.Fprintf(stderr, "portcullis tokens: unknown subcommand %q\n\n%s", args[0], tokensUsage)
	return errUsage
}

func tokensRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokens revoke", stderr)
	registry := fs.String("registry", defaultRegistry, "the client registry, beside which revocations are recorded")
	jti := fs.String("jti", "", "the jti of the token to revoke")
	client := fs.String("client", "", "the client whose tokens to revoke")
	before := fs.String("before", "", "with --client: revoke the tokens issued before this time, RFC 3339 (default now)")
	maxLifetime := fs.Duration("max-lifetime", issuer.DefaultMaxLifetime, "the issuer's --max-lifetime: how long a revocation lasts at most")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case (*jti == "") == (*client == ""):
		fmt.Fprintln(stderr, "portcullis tokens revoke: give --jti or --client, one of them")
		return errUsage
	case *before != "" && *client == "":
		fmt.Fprintln(stderr, "portcullis tokens revoke: --before goes with --client")
		return errUsage
	}
	opts := []issuer.Option{issuer.WithMaxLifetime(*maxLifetime)}
	if *jti != "" {
		if err := issuer.RevokeToken(*registry, *jti, opts...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %s\n", *jti)
		return nil
	}
	at := time.Now()
	if *before != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, *before); err != nil {
			fmt.Fprintf(stderr, "portcullis tokens revoke: --before %q is not an RFC 3339 time such as 2026-03-01T12:00:00Z\n", *before)
			return errUsage
		}
	}
	if err := issuer.RevokeClientTokens(*registry, *client, at, opts...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked the tokens of %s issued before %s\n", *client, at.UTC().Format(time.RFC3339))
	clients, err := issuer.ListClients(*registry)
	switch {
	case err != nil:
	case !slices.ContainsFunc(clients, func(c issuer.Client) bool { return c.ID == *client }):
		fmt.Fprintf(stderr, "Client %q is not in %s; the revocation applies to whatever tokens it holds.\n", *client, *registry)
	default:
		fmt.Fprintf(stderr, "Client %q stays registered: the tokens it gets from now on work. \"portcullis clients revoke %s\" removes it.\n", *client, *client)
	}
	return nil
}
