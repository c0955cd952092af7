package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/redisclient"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/services/issuer"
)

// defaultKeyDir is where "portcullis dev" and "portcullis issuer serve"
// keep the signing keys unless told otherwise.
var defaultKeyDir = filepath.Join(filepath.Dir(defaultRegistry), "keys")

const issuerUsage = `Usage:
  portcullis issuer serve       [--listen ADDR] [--url URL] [--audience AUD] [--keys DIR] [--registry FILE]
                                [--tls-cert F --tls-key F [--client-ca F | --client-certs]] [flags]
  portcullis issuer rotate-key  [--keys DIR] [--alg ES256|RS256|EdDSA] [--activate-in DURATION]
  portcullis issuer keys        [--keys DIR]

"serve" runs the OAuth 2.0 token issuer (client credentials). It re-reads its
keys and client registry when they change, and at once on SIGHUP. With
--client-ca or --client-certs it asks for TLS client certificates (RFC 8705):
clients registered with one authenticate by it, and tokens issued over such
a connection are bound to the certificate.
"rotate-key" adds a signing key that running issuers start using within
seconds; the old key stays in the JWKS until its tokens have expired.
Run "portcullis issuer COMMAND -h" for each command's flags.
`

// runIssuer runs the token issuer or manages its signing keys.
func runIssuer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, issuerUsage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return issuerServe(ctx, args[1:], stdout, stderr)
	case "rotate-key":
		return issuerRotateKey(args[1:], stdout, stderr)
	case "keys":
		return issuerKeys(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, issuerUsage)
		return nil
	}
	fmt.Fprintf(stderr, "portcullis issuer: unknown subcommand %q\n\n%s", args[0], issuerUsage)
	return errUsage
}

func issuerServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("issuer serve", stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "the address to serve on")
	issuerURL := fs.String("url", "", "the issuer URL clients and verifiers use (default: http://LISTEN, or https:// with TLS)")
	audience := fs.String("audience", "portcullis", "the aud claim of every token: what the gateway expects")
	keys := fs.String("keys", defaultKeyDir, "the signing key directory, created with a first key if missing")
	registry := fs.String("registry", defaultRegistry, "the client registry")
	alg := fs.String("alg", issuer.ES256, "the algorithm of a generated first key: ES256, RS256 or EdDSA")
	lifetime := fs.Duration("lifetime", issuer.DefaultLifetime, "the token lifetime of clients that set none")
	maxLifetime := fs.Duration("max-lifetime", issuer.DefaultMaxLifetime, "the longest token lifetime; retired keys stay published this long (plus 5m)")
	image := fs.String("image", "", "a buf image naming the permissions (default: the compiled-in services)")
	certFile := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM); needs --tls-key")
	keyFile := fs.String("tls-key", "", "the private key of --tls-cert (PEM)")
	clientCA := fs.String("client-ca", "", "request TLS client certificates, and verify those of tls_client_auth clients against these CA certificates (PEM); needs --tls-cert")
	clientCerts := fs.Bool("client-certs", false, "request TLS client certificates without a client CA: self_signed_tls_client_auth clients, and tokens bound to any client's certificate; needs --tls-cert")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	admin := fs.Bool("admin", false, "serve the client administration API (portcullis.admin.v1.ClientAdminService), for callers holding PORTCULLIS.READ_CLIENTS or MANAGE_CLIENTS")
	var corsOrigins stringList
	fs.Var(&corsOrigins, "cors-origin", "an origin whose pages may get tokens from a browser (repeatable; none by default: a page holding a client secret gives it away)")
	exchangeFile := fs.String("exchange", "", "a YAML file of trusted external issuers and mapping rules: turns on the token exchange grant (RFC 8693)")
	redisAddr := fs.String("redis", "", "also publish revocations to the Redis at this host:port, for gateways with revocation.source redis; with --redis-cluster the Cluster's seed nodes, with --redis-master-name the Sentinels (comma-separated); secrets from REDIS_USERNAME, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD")
	redisCluster := fs.Bool("redis-cluster", false, "--redis names nodes of a Redis Cluster")
	redisMaster := fs.String("redis-master-name", "", "--redis names Sentinels, which watch the master of this name")
	redisPrefix := fs.String("redis-prefix", revocation.DefaultRedisPrefix, "the key prefix of revocations in Redis: the gateways' revocation.redis.prefix")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") {
		fmt.Fprintln(stderr, "portcullis issuer serve: --tls-cert and --tls-key go together")
		return errUsage
	}
	if (*clientCA != "" || *clientCerts) && *certFile == "" {
		fmt.Fprintln(stderr, "portcullis issuer serve: --client-ca and --client-certs need --tls-cert and --tls-key")
		return errUsage
	}
	logger := newLogger(stderr, *logLevel)
	cat, err := loadCatalog(*image)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	useTLS := *certFile != ""
	if *issuerURL == "" {
		scheme := "http://"
		if useTLS {
			scheme = "https://"
		}
		*issuerURL = scheme + ln.Addr().String()
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); !useTLS && (err != nil || !net.ParseIP(host).IsLoopback()) {
		logger.Warn("issuer: serving client secrets over plain HTTP on a non-loopback address; use --tls-cert and --tls-key, or a TLS proxy")
	}
	opts := []issuer.Option{issuer.WithLogger(logger), issuer.WithMaxLifetime(*maxLifetime)}
	if *admin {
		opts = append(opts, issuer.WithAdmin())
	}
	if len(corsOrigins) > 0 {
		opts = append(opts, issuer.WithCORS(cors.Policy{AllowedOrigins: corsOrigins}))
		logger.Warn("issuer: pages of these origins may get tokens from a browser; never give a page a confidential client's secret", "origins", []string(corsOrigins))
	}
	if *exchangeFile != "" {
		x, err := issuer.ReadExchange(*exchangeFile)
		if err != nil {
			return err
		}
		opts = append(opts, issuer.WithExchange(x))
	}
	var tlsConfig *tls.Config
	if *clientCA != "" || *clientCerts {
		var pool *x509.CertPool
		if *clientCA != "" {
			if pool, err = readCertPool(*clientCA); err != nil {
				return err
			}
		}
		opts = append(opts, issuer.WithMutualTLS(pool))
		tlsConfig = issuer.TLSConfig()
	}
	if *redisAddr != "" {
		client, err := redisclient.New(config.RedisServers{
			Addrs:            strings.FieldsFunc(*redisAddr, func(r rune) bool { return r == ',' || r == ' ' }),
			Cluster:          *redisCluster,
			MasterName:       *redisMaster,
			Username:         os.Getenv("REDIS_USERNAME"),
			Password:         os.Getenv("REDIS_PASSWORD"),
			SentinelPassword: os.Getenv("REDIS_SENTINEL_PASSWORD"),
		}, redisclient.Timeouts{})
		if err != nil {
			fmt.Fprintf(stderr, "portcullis issuer serve: --redis: %v\n", err)
			return errUsage
		}
		defer client.Close()
		store, err := revocation.NewRedis(client, revocation.WithPrefix(*redisPrefix))
		if err != nil {
			return err
		}
		opts = append(opts, issuer.WithRevocationStore(store))
	}
	srv, err := issuer.New(issuer.Config{
		IssuerURL:       *issuerURL,
		Audience:        *audience,
		KeyDir:          *keys,
		Algorithm:       *alg,
		RegistryPath:    *registry,
		DefaultLifetime: *lifetime,
	}, cat, opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	context.AfterFunc(ctx, func() { srv.Close() }) // before the drain: followers of the feed wait for news

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.Reload(); err == nil {
					logger.Info("issuer: reloaded on SIGHUP")
				}
			}
		}
	}()

	fmt.Fprintf(stdout, "Token issuer %s\n  token endpoint  %s\n  JWKS            %s\n  metadata        %s%s\n  revocation      %s (feed %s)\n",
		srv.Issuer(), srv.TokenURL(), srv.JWKSURL(), srv.Issuer(), issuer.OpenIDConfigurationPath, srv.RevocationURL(), srv.RevocationFeedURL())
	if !useTLS {
		return serve(ctx, ln, srv.Handler(), 5*time.Second)
	}
	return serveTLS(ctx, ln, srv.Handler(), *certFile, *keyFile, tlsConfig)
}

// readCertPool reads the PEM certificates of path.
func readCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// serveTLS serves h over HTTPS (HTTP/1.1 and HTTP/2) until ctx is done,
// with config if not nil (the certificate comes from the files).
func serveTLS(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string, config *tls.Config) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: config}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, certFile, keyFile) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdown)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

func issuerRotateKey(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("issuer rotate-key", stderr)
	keys := fs.String("keys", defaultKeyDir, "the signing key directory")
	alg := fs.String("alg", issuer.ES256, "the new key's algorithm: ES256, RS256 or EdDSA")
	activateIn := fs.Duration("activate-in", 0, "publish the key now, sign with it after this delay")
	maxLifetime := fs.Duration("max-lifetime", issuer.DefaultMaxLifetime, "the issuer's --max-lifetime: how long retired keys stay published (plus 5m)")
	if err := parse(fs, args); err != nil {
		return err
	}
	k, err := issuer.RotateKey(*keys, *alg, issuer.WithActivationDelay(*activateIn), issuer.WithMaxLifetime(*maxLifetime))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new %s key %s (signs from %s)\n\n", k.Algorithm, k.KID, k.Activates.Format(time.RFC3339))
	return printKeys(stdout, *keys, *maxLifetime)
}

func issuerKeys(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("issuer keys", stderr)
	keys := fs.String("keys", defaultKeyDir, "the signing key directory")
	maxLifetime := fs.Duration("max-lifetime", issuer.DefaultMaxLifetime, "the issuer's --max-lifetime")
	if err := parse(fs, args); err != nil {
		return err
	}
	return printKeys(stdout, *keys, *maxLifetime)
}

func printKeys(w io.Writer, dir string, maxLifetime time.Duration) error {
	infos, err := issuer.ListKeys(dir, issuer.WithMaxLifetime(maxLifetime))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tACTIVATES\tLEAVES JWKS")
	for _, k := range infos {
		leaves := "-"
		if !k.Expires.IsZero() {
			leaves = k.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State, k.Activates.Format(time.RFC3339), leaves)
	}
	return tw.Flush()
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
