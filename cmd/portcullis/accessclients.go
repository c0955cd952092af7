package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/services/issuer"
)

// accessClient is a client of the registry, its grants resolved through
// the catalog.
type accessClient struct {
	id, tier string
	grants   []*catalog.Permission // in catalog order
	masks    map[string]uint64
}

// canCall reports whether a token of the client, holding all its grants,
// may call m.
func (c *accessClient) canCall(m *catalog.Method) bool { return m.Public || m.Allows(c.masks) }

// loadAccessClients reads the registry at path, which must exist, and
// resolves every client's grants. A grant the catalog does not know makes
// the issuer refuse the whole registry; it is an error here too, naming
// every such client.
func loadAccessClients(path string, cat *catalog.Catalog) ([]accessClient, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("registry %s does not exist", path)
	}
	list, err := issuer.ListClients(path)
	if err != nil {
		return nil, err
	}
	clients := make([]accessClient, 0, len(list))
	var problems []string
	for _, c := range list {
		masks, err := cat.Masks(c.Grants)
		if err != nil {
			problems = append(problems, fmt.Sprintf("client %q: grants %v", c.ID, err))
			continue
		}
		clients = append(clients, accessClient{id: c.ID, tier: c.Tier, grants: cat.Granted(masks), masks: masks})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("registry %s does not match the catalog, and the issuer would refuse it:\n  %s", path, strings.Join(problems, "\n  "))
	}
	return clients, nil
}

// clientRef names a client in JSON.
type clientRef struct {
	ClientID string `json:"client_id"`
	Tier     string `json:"tier,omitempty"`
}

func (c *accessClient) ref() clientRef { return clientRef{ClientID: c.id, Tier: c.tier} }

// tierText is the client's tier, or "-".
func (c clientRef) tierText() string {
	if c.Tier == "" {
		return "-"
	}
	return c.Tier
}

// refs returns the references of ps, such as "LIC.READ_ORDERS"; never nil.
func refs(ps []*catalog.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// list joins names with commas, "-" for none.
func list(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ", ")
}
