package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/portcullis/portcullis/services/issuer"
)

// defaultRegistry is where "portcullis dev" and "portcullis issuer serve"
// keep the client registry unless told otherwise.
const defaultRegistry = ".portcullis/clients.yaml"

const clientsUsage = `Usage:
  portcullis clients add ID --grant PERMISSION [--grant PERMISSION...] [--tier TIER] [--lifetime DURATION] [--introspect] [--exchange]
                            [--tls-subject-dn DN | --tls-san-uri URI | --tls-san-dns NAME | --self-signed-cert FILE] [--bound-tokens]
  portcullis clients list
  portcullis clients revoke ID

Every subcommand takes --registry FILE (default ` + defaultRegistry + `).
"add" prints the client's new secret once; the registry keeps only its hash.
A client added with --tls-* or --self-signed-cert has no secret: it
authenticates with its TLS client certificate (RFC 8705).
"revoke" removes the client and revokes every token it holds: gateways
refuse them within a second of the issuer reading the revocation.
A running issuer picks changes up within seconds, without a restart.
`

// runClients manages the OAuth clients of the token issuer.
func runClients(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientsUsage)
		return errUsage
	}
	switch args[0] {
	case "add":
		return clientsAdd(args[1:], stdout, stderr)
	case "list":
		return clientsList(args[1:], stdout, stderr)
	case "revoke":
		return clientsRevoke(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, clientsUsage)
		return nil
	}
	fmt.Fprintf(stderr, "portcullis clients: unknown subcommand %q\n\n%s", args[0], clientsUsage)
	return errUsage
}

func clientsAdd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients add", stderr)
	registry := fs.String("registry", defaultRegistry, "the client registry")
	var grants grantFlag
	fs.Var(&grants, "grant", "a permission the client may ask for, such as LIC.READ_ORDERS (repeat for more)")
	tier := fs.String("tier", "", "the client's tier, such as free or pro")
	lifetime := fs.Duration("lifetime", 0, "the lifetime of the client's tokens (default: the issuer's, 1h)")
	exchange := fs.Bool("exchange", false, "let the client exchange tokens of trusted external issuers (token exchange, RFC 8693; see issuer serve --exchange)")
	introspect := fs.Bool("introspect", false, "let the client call the introspection endpoint (a gateway that introspects the issuer's tokens)")
	image := fs.String("image", "", "a buf image whose permissions grants must name (default: the compiled-in services)")
	var auth issuer.CertificateAuth
	fs.StringVar(&auth.SubjectDN, "tls-subject-dn", "", "authenticate by a TLS client certificate of the issuer's --client-ca with this subject, such as CN=billing,O=Example (tls_client_auth; no secret)")
	fs.StringVar(&auth.SANURI, "tls-san-uri", "", "authenticate by a TLS client certificate of the issuer's --client-ca holding this URI SAN, such as a SPIFFE ID (tls_client_auth; no secret)")
	fs.StringVar(&auth.SANDNS, "tls-san-dns", "", "authenticate by a TLS client certificate of the issuer's --client-ca holding this DNS SAN (tls_client_auth; no secret)")
	selfSigned := fs.String("self-signed-cert", "", "authenticate by one of the self-signed certificates of this PEM file (self_signed_tls_client_auth; no secret)")
	bound := fs.Bool("bound-tokens", false, "issue the client only tokens bound to its TLS client certificate (tls_client_certificate_bound_access_tokens)")
	id, err := parseOneArg(fs, args, "ID")
	if err != nil {
		return err
	}
	if *selfSigned != "" {
		if auth.Certificates, err = readCertificates(*selfSigned); err != nil {
			return err
		}
	}
	cat, err := loadCatalog(*image)
	if err != nil {
		return err
	}
	secret, err := issuer.AddClient(*registry, cat, issuer.Client{ID: id, Grants: grants, Tier: *tier, TokenLifetime: *lifetime, Introspect: *introspect, Exchange: *exchange,
		CertificateAuth: auth, CertificateBoundTokens: *bound})
	if err != nil {
		return err
	}
	if m := auth.Method(); m != "" {
		fmt.Fprintf(stdout, "client_id:                  %s\ntoken_endpoint_auth_method: %s\n", id, m)
		fmt.Fprintf(stderr, "Client %q added to %s. It authenticates with its TLS client certificate and client_id, to an issuer served with --client-ca or --client-certs.\n", id, *registry)
		return nil
	}
	fmt.Fprintf(stdout, "client_id:     %s\nclient_secret: %s\n", id, secret)
	fmt.Fprintf(stderr, "Client %q added to %s. Store its secret now: it is shown only this once.\n", id, *registry)
	return nil
}

func clientsList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients list", stderr)
	registry := fs.String("registry", defaultRegistry, "the client registry")
	if err := parse(fs, args); err != nil {
		return err
	}
	clients, err := issuer.ListClients(*registry)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTIER\tLIFETIME\tAUTH\tGRANTS")
	for _, c := range clients {
		tier, lifetime, granted := c.Tier, "default", strings.Join(c.Grants, " ")
		if tier == "" {
			tier = "-"
		}
		if c.TokenLifetime > 0 {
			lifetime = c.TokenLifetime.String()
		}
		if granted == "" {
			granted = "-"
		}
		auth := c.CertificateAuth.Method()
		if auth == "" {
			auth = "secret"
		}
		if c.CertificateBoundTokens {
			auth += ",bound"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, tier, lifetime, auth, granted)
	}
	return w.Flush()
}

func clientsRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients revoke", stderr)
	registry := fs.String("registry", defaultRegistry, "the client registry")
	maxLifetime := fs.Duration("max-lifetime", issuer.DefaultMaxLifetime, "the issuer's --max-lifetime: how long the revocation of its tokens lasts")
	id, err := parseOneArg(fs, args, "ID")
	if err != nil {
		return err
	}
	if err := issuer.RevokeClient(*registry, id, issuer.WithMaxLifetime(*maxLifetime)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked %s\n", id)
	fmt.Fprintf(stderr, "The tokens it holds are revoked too: gateways refuse them within a second of the issuer reading %s.\n", issuer.RevocationsPath(*registry))
	return nil
}

// readCertificates reads the PEM certificates of path.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}

// grantFlag collects repeated --grant flags; a value may also list several
// permissions separated by commas or spaces.
type grantFlag []string

func (g *grantFlag) String() string { return strings.Join(*g, ",") }

func (g *grantFlag) Set(v string) error {
	names := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	if len(names) == 0 {
		return errors.New("empty permission")
	}
	*g = append(*g, names...)
	return nil
}

// parseOneArg parses flags that may come before or after one positional
// argument, named name in messages, and returns it.
func parseOneArg(fs *flag.FlagSet, args []string, name string) (string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(positional) {
	case 1:
		return positional[0], nil
	case 0:
		fmt.Fprintf(fs.Output(), "%s: missing %s\n", fs.Name(), name)
	default:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), positional[1])
	}
	return "", errUsage
}
