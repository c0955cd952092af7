package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
)

// Experiments are candidates for the gateway's request path, each
// measured beside today's gateway in the same run, interleaved with it in
// every cycle, so that its CPU per call, calls per second and latency
// are read as ratios to the gateway's, which the machine's load cannot
// skew. Name them with -experiment, comma-separated:
//
//	go run ./cmd/loadtest -experiment relay,grpc-go,before -baseline c884797
//
// An experiment that is not the gateway may serve fewer protocols; the
// scenarios of the others skip it.
type experiment struct {
	target target
	about  string
	// protocols are those it serves; nil: every scenario's.
	protocols []string
	// start starts its process and returns it with its URL.
	start func(ctx context.Context, s *stack, opts options) (*process, string, error)
}

// experiments are the candidates -experiment may name.
var experiments = []experiment{
	{
		target: viaRelay,
		about:  "the same-protocol byte relay of relay.go: the gateway's policy code, then net/http's reverse proxy",
		start:  startSubcommand("relay"),
	},
	{
		target:    "grpc-go",
		about:     "grpc-go's transport in and out (grpcrelay.go): the gateway's policy code over a grpc.Server and a ClientConn",
		protocols: []string{"grpc"},
		start:     startSubcommand("grpcrelay"),
	},
	{
		target:    "grpc-go-in",
		about:     "grpc-go's server in, net/http's HTTP/2 client out (grpcsplit.go): which side grpc-go's gain is on",
		protocols: []string{"grpc"},
		start:     startSubcommand("grpcin"),
	},
	{
		target:    "grpc-go-out",
		about:     "net/http's HTTP/2 server in, a grpc-go ClientConn out (grpcsplit.go)",
		protocols: []string{"grpc"},
		start:     startSubcommand("grpcout"),
	},
	{
		target:    "frame-relay",
		about:     "a frame-level HTTP/2 relay on x/net/http2's Framer and HPACK (framerelay.go): the gateway's policy code, no net/http",
		protocols: []string{"grpc"},
		start:     startSubcommand("framerelay"),
	},
	{
		target:    "grpc-listen",
		about:     "today's gateway called on its gRPC listener (grpc_listen): grpc-go's transport in, the same decision and forwarding",
		protocols: []string{"grpc"},
		start: func(ctx context.Context, s *stack, opts options) (*process, string, error) {
			return s.startGatewayOn(ctx, "grpc-listen", s.bin, s.gatewayEnv, true)
		},
	},
	{
		target:    "before-grpc-listen",
		about:     "the gateway built from -baseline's commit, called on its gRPC listener",
		protocols: []string{"grpc"},
		start: func(ctx context.Context, s *stack, opts options) (*process, string, error) {
			if opts.baselineBin == "" {
				return nil, "", fmt.Errorf("the before-grpc-listen experiment needs -baseline REF")
			}
			return s.startGatewayOn(ctx, "before-grpc-listen", opts.baselineBin, s.gatewayEnv, true)
		},
	},
	{
		target: "before",
		about:  "the gateway built from -baseline's commit, with the same configuration",
		start: func(ctx context.Context, s *stack, opts options) (*process, string, error) {
			if opts.baselineBin == "" {
				return nil, "", fmt.Errorf("the before experiment needs -baseline REF")
			}
			return s.startGateway(ctx, "before", opts.baselineBin, s.gatewayEnv)
		},
	},
}

// experimentsNamed returns the experiments of a comma-separated list.
func experimentsNamed(list string) ([]experiment, error) {
	var out []experiment
	for name := range strings.SplitSeq(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if setting, ok := strings.CutPrefix(name, "env:"); ok {
			e, err := envExperiment(setting)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
			continue
		}
		i := slices.IndexFunc(experiments, func(e experiment) bool { return string(e.target) == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown experiment %q", name)
		}
		out = append(out, experiments[i])
	}
	return out, nil
}

// envExperiment is today's gateway with one more environment variable,
// named env:KEY=VALUE (env:GOMAXPROCS=1, env:GODEBUG=adaptivestackstart=1).
func envExperiment(setting string) (experiment, error) {
	if k, _, ok := strings.Cut(setting, "="); !ok || k == "" {
		return experiment{}, fmt.Errorf("experiment env:%s: want env:KEY=VALUE", setting)
	}
	return experiment{
		target: target("env:" + setting),
		about:  "today's gateway with " + setting + " in its environment",
		start: func(ctx context.Context, s *stack, _ options) (*process, string, error) {
			env := slices.Clone(s.gatewayEnv)
			if v, ok := strings.CutPrefix(setting, "GODEBUG="); ok {
				env = withGODEBUG(env, v)
			} else {
				env = append(env, setting)
			}
			name := strings.NewReplacer("=", "-", ",", "-").Replace(setting)
			return s.startGateway(ctx, name, s.bin, env)
		},
	}, nil
}

// serves reports whether target t takes calls of the protocol.
func serves(t target, protocol string) bool {
	for _, e := range experiments {
		if e.target == t {
			return e.protocols == nil || slices.Contains(e.protocols, protocol)
		}
	}
	return true
}

// startExperiments starts the process of each of opts.exps beside the
// stack, and returns their targets.
func (s *stack) startExperiments(ctx context.Context, opts options) ([]target, error) {
	var started []target
	for _, e := range opts.exps {
		p, url, err := e.start(ctx, s, opts)
		if s.extra == nil {
			s.extra, s.extraURL = map[target]*process{}, map[target]string{}
		}
		if p != nil {
			s.extra[e.target], s.extraURL[e.target] = p, url // stopped with the stack, even if not ready
		}
		if err != nil {
			return nil, fmt.Errorf("experiment %s: %w", e.target, err)
		}
		started = append(started, e.target)
	}
	return started, nil
}

// subcommands are the experiments that run as a subcommand of this binary,
// by name, each serving what a listener accepts, relayed to an h2c backend,
// until its context is done:
//
//	loadtest NAME -listen ADDR -backend URL -jwks FILE
var subcommands = map[string]func(ctx context.Context, ln net.Listener, backend, jwksFile string) error{
	"relay":           serveRelay,
	"grpcrelay":       serveGRPCRelay,
	"grpcin":          serveGRPCIn,
	"grpcout":         serveGRPCOut,
	"grpclisten":      serveGRPCListen,
	"framerelay":      serveFrameRelay,
	"framerelay-open": serveFrameRelayOpen,
}

// subcommandMain runs the subcommand of the name until interrupted.
func subcommandMain(name string, serve func(context.Context, net.Listener, string, string) error) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve h2c on")
	backend := fs.String("backend", "", "the backend's URL")
	jwks := fs.String("jwks", "", "the issuer's key set")
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	if err := serve(ctx, ln, *backend, *jwks); err != nil {
		log.Fatalf("%s: %v", name, err)
	}
}

// startSubcommand starts an experiment that is one of subcommands.
func startSubcommand(name string) func(context.Context, *stack, options) (*process, string, error) {
	return startSubcommandWith(name, nil)
}

// startSubcommandWith is startSubcommand with more environment variables,
// from env, when it is not nil.
func startSubcommandWith(name string, env func(*stack) []string) func(context.Context, *stack, options) (*process, string, error) {
	return func(ctx context.Context, s *stack, _ options) (*process, string, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, "", err
		}
		addr := freeAddr()
		vars := experimentEnv(s.wrap, name)
		if env != nil {
			vars = append(vars, env(s)...)
		}
		p, err := s.start(ctx, name, vars, exe, name, "-listen", addr, "-backend", s.backendURL, "-jwks", s.jwksFile)
		if err != nil {
			return nil, "", err
		}
		if err := waitTCP(ctx, addr, s.ready); err != nil {
			return p, "", err
		}
		return p, "http://" + addr, nil
	}
}

// experimentEnv is an experiment's environment: under valgrind, without
// asynchronous preemption, as for the gateway.
func experimentEnv(wrap func(string) []string, name string) []string {
	if wrap != nil && len(wrap(name)) > 0 {
		return []string{"GODEBUG=asyncpreemptoff=1"}
	}
	return nil
}

// buildBaseline builds ./cmd/portcullis as it is at the commit ref, in a
// temporary worktree, and returns the binary's path.
func buildBaseline(ctx context.Context, ref, work string) (string, error) {
	src := filepath.Join(work, "baseline-src")
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := git("worktree", "add", "--detach", "-q", src, ref); err != nil {
		return "", fmt.Errorf("baseline %s: %w", ref, err)
	}
	defer func() { _ = git("worktree", "remove", "--force", src) }()
	out := filepath.Join(work, "portcullis-baseline")
	log.Printf("building portcullis at %s", ref)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/portcullis")
	cmd.Dir = src
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("baseline %s: %w", ref, err)
	}
	return out, nil
}

// experimentNames lists the experiments, for -experiment's help.
func experimentNames() string {
	var b strings.Builder
	for _, e := range experiments {
		fmt.Fprintf(&b, "%s (%s); ", e.target, e.about)
	}
	b.WriteString("env:KEY=VALUE (today's gateway with one more environment variable)")
	return b.String()
}
