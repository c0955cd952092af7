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

// runAccess lists, for every method, the permissions it requires.
func runAccess(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("access", stderr)
	image := fs.String("image", "", "a buf image (buf build -o FILE); default: the compiled-in services")
	format := fs.String("format", "table", "output format: table, json or markdown")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !slices.Contains([]string{"table", "json", "markdown"}, *format) {
		fmt.Fprintf(stderr, "portcullis access: unknown format %q (want table, json or markdown)\n", *format)
		return errUsage
	}
	cat, err := loadCatalog(*image)
	if err != nil {
		return err
	}
	rows := accessRows(cat)
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "markdown":
		fmt.Fprintln(stdout, "| Method | Access | Requires | Masks | Rate limit |")
		fmt.Fprintln(stdout, "|---|---|---|---|---|")
		for _, r := range rows {
			fmt.Fprintf(stdout, "| `%s` | %s | %s | %s | %s |\n", r.Procedure, r.access(), r.requires(), r.masks(), r.rateLimit())
		}
		return nil
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "METHOD\tACCESS\tREQUIRES\tMASKS\tRATE LIMIT")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Procedure, r.access(), r.requires(), r.masks(), r.rateLimit())
		}
		return tw.Flush()
	}
}

// accessRow is one method in the output of "access".
type accessRow struct {
	Procedure string            `json:"procedure"`
	Public    bool              `json:"public"`
	Requires  []requiredPerm    `json:"requires"`
	Masks     map[string]uint64 `json:"masks"`
	RateLimit *rateLimitJSON    `json:"rate_limit,omitempty"`
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

func accessRows(cat *catalog.Catalog) []accessRow {
	rows := make([]accessRow, 0, len(cat.Methods()))
	for _, m := range cat.Methods() {
		row := accessRow{Procedure: m.Procedure, Public: m.Public, Requires: []requiredPerm{}, Masks: map[string]uint64{}}
		for _, p := range m.Requires {
			row.Requires = append(row.Requires, requiredPerm{Permission: p.String(), Mask: p.Mask, Description: p.Description})
		}
		for _, n := range m.Need {
			row.Masks[n.Domain] = n.Mask
		}
		if rl := m.RateLimit; rl != nil {
			row.RateLimit = &rateLimitJSON{Requests: rl.Requests, Period: rl.Period.String(), Burst: rl.Burst}
		}
		rows = append(rows, row)
	}
	return rows
}

func (r accessRow) access() string {
	if r.Public {
		return "public"
	}
	return "token"
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
