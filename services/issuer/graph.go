package issuer

import (
	"context"

	"github.com/portcullis/portcullis/gateway/graph"
)

// GraphClients returns the clients of the registry at path for the
// permission graph page ([graph.Handler]), read afresh on every request.
func GraphClients(path string) graph.ClientsFunc {
	return func(context.Context) ([]graph.Client, error) {
		clients, err := ListClients(path)
		if err != nil {
			return nil, err
		}
		out := make([]graph.Client, len(clients))
		for i, c := range clients {
			out[i] = graph.Client{ID: c.ID, Grants: c.Grants, Tier: c.Tier}
		}
		return out, nil
	}
}
