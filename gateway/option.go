package gateway

import (
	"log/slog"
	"slices"

	"github.com/portcullis/portcullis/gateway/graph"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/telemetry"
	"github.com/portcullis/portcullis/gateway/token"
)

// An Option configures [New].
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger       *slog.Logger
	clients      graph.ClientsFunc
	files        []*protoregistry.Files
	tokenOptions []token.Option
	telemetry    []telemetry.Option
	configFile   string
}

// clone returns a copy that appending to does not change o.
func (o *options) clone() *options {
	c := *o
	c.files = slices.Clone(o.files)
	c.tokenOptions = slices.Clone(o.tokenOptions)
	c.telemetry = slices.Clone(o.telemetry)
	return &c
}

// WithConfigFile names the file the configuration was loaded from: POST
// /admin/reload and [Gateway.ReloadFile] read it again, and it is watched,
// with the buf images it names, every reload.watch_interval, a change
// reloading it.
func WithConfigFile(path string) Option {
	return optionFunc(func(o *options) { o.configFile = path })
}

func newOptions(opts []Option) *options {
	o := &options{logger: slog.Default()}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

// WithLogger sets the logger for the gateway's own messages and access
// lines. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}

// WithClients gives the permission graph of the admin listener (/graph)
// the clients of an issuer's registry, joined with the catalog: who holds
// which grants and so may call which methods.
func WithClients(clients graph.ClientsFunc) Option {
	return optionFunc(func(o *options) { o.clients = clients })
}

// WithFiles adds descriptors to those the configuration names, ahead of
// them: for services known to the program embedding the gateway.
func WithFiles(files *protoregistry.Files) Option {
	return optionFunc(func(o *options) { o.files = append(o.files, files) })
}

// WithTokenOptions passes options to the token verifier, such as a clock
// or an HTTP client for fetching keys.
func WithTokenOptions(opts ...token.Option) Option {
	return optionFunc(func(o *options) { o.tokenOptions = append(o.tokenOptions, opts...) })
}

// WithTelemetryOptions passes options to telemetry, such as the tracer and
// meter providers.
func WithTelemetryOptions(opts ...telemetry.Option) Option {
	return optionFunc(func(o *options) { o.telemetry = append(o.telemetry, opts...) })
}

func (o *options) telemetryOptions(cfg config.Telemetry) []telemetry.Option {
	opts := []telemetry.Option{telemetry.WithLogger(o.logger), telemetry.WithAccessLog(cfg.AccessLogEnabled())}
	if cfg.TraceSampleRatio != nil {
		opts = append(opts, telemetry.WithSampleRatio(*cfg.TraceSampleRatio))
	}
	return append(opts, o.telemetry...)
}
