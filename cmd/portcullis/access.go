package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/portcullis/portcullis/gateway/catalog"
)

const accessUsage = `Usage: portcullis access [--image FILE] [--format table|json|markdown] [--registry FILE]
         [--method /pkg.Service/Method | --service pkg.Service | --permission DOMAIN.NAME | --client ID]

Lists who can call what, as the protos declare it: every method, the
permissions it requires (a caller must hold all of them), its masks and its
rate limit.

With --registry, the token issuer's client registry (portcullis dev keeps it
in .portcullis/clients.yaml), it also lists the clients that can call each
method today: those whose grants hold every permission the method requires,
and everyone for a public method. A revoked client is no longer in the
registry; the tokens it already holds stay valid until they expire.

One query narrows the answer:
  --method M      the method, the clients that can call it and through which
                  grants, and those that cannot and what they miss
  --service S     the methods of service S
  --permission P  the methods that require P, and the clients that hold it
  --client ID     the methods the client can call and through which grants,
                  and those it cannot and what it misses (needs --registry)

Flags:
`

// runAccess lists, for every method, the permissions it requires and, with
// a registry, the clients that can call it; or answers one query.
func runAccess(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("access", stderr)
	image := fs.String("image", "", "a buf image (buf build -o FILE); default: the compiled-in services")
	format := fs.String("format", "table", "output format: table (or text), json or markdown")
	registry := fs.String("registry", "", "the token issuer's client registry, to list the clients that can call each method")
	method := fs.String("method", "", "list the method /pkg.Service/Method and who can call it")
	service := fs.String("service", "", "list the methods of the service pkg.Service")
	permission := fs.String("permission", "", "list the methods that require DOMAIN.NAME, and the clients that hold it")
	client := fs.String("client", "", "list the methods the client ID can call (needs --registry)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), accessUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *format == "text" {
		*format = "table"
	}
	if !slices.Contains([]string{"table", "json", "markdown"}, *format) {
		fmt.Fprintf(stderr, "portcullis access: unknown format %q (want table, json or markdown)\n", *format)
		return errUsage
	}
	queries := 0
	for _, q := range []string{*method, *service, *permission, *client} {
		if q != "" {
			queries++
		}
	}
	switch {
	case queries > 1:
		fmt.Fprintln(stderr, "portcullis access: give at most one of --method, --service, --permission and --client")
		return errUsage
	case *client != "" && *registry == "":
		fmt.Fprintf(stderr, "portcullis access: --client needs --registry FILE, such as %s\n", defaultRegistry)
		return errUsage
	}
	cat, err := loadCatalog(*image)
	if err != nil {
		return err
	}
	r := &accessReport{cat: cat, format: *format, w: stdout}
	if *registry != "" {
		if r.clients, err = loadAccessClients(*registry, cat); err != nil {
			return err
		}
		r.joined = true
	}
	switch {
	case *method != "":
		return r.method(*method)
	case *service != "":
		return r.service(*service)
	case *permission != "":
		return r.permission(*permission)
	case *client != "":
		return r.client(*client, *registry)
	}
	return r.methods(cat.Methods())
}

// accessReport writes the answers of "access" in one format.
type accessReport struct {
	cat     *catalog.Catalog
	clients []accessClient // from the registry, sorted by id
	joined  bool           // a registry was given
	format  string
	w       io.Writer
}

// methods lists methods, one row each, with their callers when joined.
func (r *accessReport) methods(methods []*catalog.Method) error {
	rows := make([]accessRow, 0, len(methods))
	for _, m := range methods {
		row := newAccessRow(m)
		if r.joined {
			callers := []string{}
			for _, c := range r.clients {
				if c.canCall(m) {
					callers = append(callers, c.id)
				}
			}
			row.Clients = &callers
		}
		rows = append(rows, row)
	}
	switch r.format {
	case "json":
		return writeJSON(r.w, rows)
	case "markdown":
		head, rule := "| Method | Access | Requires | Masks | Rate limit |", "|---|---|---|---|---|"
		if r.joined {
			head, rule = head+" Clients |", rule+"---|"
		}
		fmt.Fprintf(r.w, "%s\n%s\n", head, rule)
		for _, row := range rows {
			fmt.Fprintf(r.w, "| `%s` | %s | %s | %s | %s |", row.Procedure, row.access(), mdCell(row.requires()), row.masks(), row.rateLimit())
			if r.joined {
				fmt.Fprintf(r.w, " %s |", row.callers("`"))
			}
			fmt.Fprintln(r.w)
		}
		return nil
	default:
		tw := newTabWriter(r.w)
		head := "METHOD\tACCESS\tREQUIRES\tMASKS\tRATE LIMIT"
		if r.joined {
			head += "\tCLIENTS"
		}
		fmt.Fprintln(tw, head)
		for _, row := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", row.Procedure, row.access(), row.requires(), row.masks(), row.rateLimit())
			if r.joined {
				fmt.Fprintf(tw, "\t%s", row.callers(""))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
}

// service lists the methods of one service.
func (r *accessReport) service(name string) error {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "/"), "/")
	var methods []*catalog.Method
	for _, m := range r.cat.Methods() {
		if strings.HasPrefix(m.Procedure, "/"+name+"/") {
			methods = append(methods, m)
		}
	}
	if len(methods) == 0 {
		return fmt.Errorf("service %q is not in the catalog", name)
	}
	return r.methods(methods)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// mdCell makes s safe in a Markdown table cell.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// accessRow is one method in the output of "access".
type accessRow struct {
	Procedure string            `json:"procedure"`
	Public    bool              `json:"public"`
	Requires  []requiredPerm    `json:"requires"`
	Masks     map[string]uint64 `json:"masks"`
	RateLimit *rateLimitJSON    `json:"rate_limit,omitempty"`
	// MaxTokenAge is the method's max_token_age, such as "5m0s", or "".
	MaxTokenAge string `json:"max_token_age,omitempty"`
	// HighValue methods fail closed while the revocations are stale.
	HighValue bool `json:"high_value,omitempty"`
	// SenderConstrained methods refuse bearer tokens: the token must be
	// bound to the call's client certificate or DPoP key.
	SenderConstrained bool `json:"sender_constrained,omitempty"`
	// Clients are the ids of the registry's clients that can call the
	// method; nil without a registry.
	Clients *[]string `json:"clients,omitempty"`
}

type requiredPerm struct {
	Permission  string `json:"permission"`
	Mask        uint64 `json:"mask"`
	Description string `json:"description"`
}

type rateLimitJSON struct {
	Requests uint32 `json:"requests"`
	Period   string `json:"period"`
	Burst    uint32 `json:"burst"`
}

func newAccessRow(m *catalog.Method) accessRow {
	row := accessRow{Procedure: m.Procedure, Public: m.Public, Requires: []requiredPerm{}, Masks: map[string]uint64{}, HighValue: m.HighValue, SenderConstrained: m.SenderConstrained}
	if m.MaxTokenAge > 0 {
		row.MaxTokenAge = m.MaxTokenAge.String()
	}
	for _, p := range m.Requires {
		row.Requires = append(row.Requires, newRequiredPerm(p))
	}
	for _, n := range m.Need {
		row.Masks[n.Domain] = n.Mask
	}
	if rl := m.RateLimit; rl != nil {
		row.RateLimit = &rateLimitJSON{Requests: rl.Requests, Period: rl.Period.String(), Burst: rl.Burst}
	}
	return row
}

func newRequiredPerm(p *catalog.Permission) requiredPerm {
	return requiredPerm{Permission: p.String(), Mask: p.Mask, Description: p.Description}
}

// access says who may call: "public" or "token", with the token's
// maximum age, the high-value and the bound-token markers when the method
// declares them.
func (r accessRow) access() string {
	s := "token"
	if r.Public {
		s = "public"
	}
	if r.MaxTokenAge != "" {
		s += ", max age " + r.MaxTokenAge
	}
	if r.HighValue {
		s += ", high value"
	}
	if r.SenderConstrained {
		s += ", bound token"
	}
	return s
}

func (r accessRow) requires() string {
	if len(r.Requires) == 0 {
		return "-"
	}
	names := make([]string, len(r.Requires))
	for i, p := range r.Requires {
		names[i] = fmt.Sprintf("%s (%d)", p.Permission, p.Mask)
	}
	return strings.Join(names, ", ")
}

func (r accessRow) masks() string {
	if len(r.Masks) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(r.Masks))
	for d, m := range r.Masks {
		parts = append(parts, fmt.Sprintf("%s=%d", d, m))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (r accessRow) rateLimit() string {
	if r.RateLimit == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%s burst %d", r.RateLimit.Requests, r.RateLimit.Period, r.RateLimit.Burst)
}

// callers names the clients that can call the method, each between quote:
// "anyone" for a public method, "-" for none.
func (r accessRow) callers(quote string) string {
	if r.Public {
		return "anyone"
	}
	if r.Clients == nil || len(*r.Clients) == 0 {
		return "-"
	}
	return quote + strings.Join(*r.Clients, quote+", "+quote) + quote
}
