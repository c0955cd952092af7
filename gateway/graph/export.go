package graph

// exported is the shown part of the graph as JSON, for tools.
type exported struct {
	Query        string               `json:"query,omitempty"`
	Methods      []exportedMethod     `json:"methods"`
	Permissions  []exportedPermission `json:"permissions"`
	Clients      []exportedClient     `json:"clients,omitempty"`
	ClientsError string               `json:"clients_error,omitempty"`
}

type exportedMethod struct {
	Procedure string   `json:"procedure"`
	Public    bool     `json:"public,omitempty"`
	Requires  []string `json:"requires,omitempty"`
	// Callers are the clients granted every permission the method
	// requires; a public method is open to anyone, and lists none.
	Callers []string `json:"callers,omitempty"`
}

type exportedPermission struct {
	Name        string   `json:"name"`
	Mask        uint64   `json:"mask"`
	Description string   `json:"description,omitempty"`
	RequiredBy  []string `json:"required_by,omitempty"`
	GrantedTo   []string `json:"granted_to,omitempty"`
}

type exportedClient struct {
	ID            string   `json:"id"`
	Tier          string   `json:"tier,omitempty"`
	Grants        []string `json:"grants,omitempty"`
	UnknownGrants []string `json:"unknown_grants,omitempty"`
	Calls         []string `json:"calls,omitempty"`
}

// export returns the shown nodes, after match.
func (g *graph) export(query string, clientsErr error) *exported {
	e := &exported{Query: query, Methods: []exportedMethod{}, Permissions: []exportedPermission{}}
	if clientsErr != nil {
		e.ClientsError = clientsErr.Error()
	}
	procedure := func(mn *methodNode) string { return mn.m.Procedure }
	ref := func(pn *permNode) string { return pn.p.String() }
	id := func(cn *clientNode) string { return cn.c.ID }
	for _, mn := range g.methods {
		if mn.shown {
			e.Methods = append(e.Methods, exportedMethod{Procedure: mn.m.Procedure, Public: mn.m.Public,
				Requires: names(mn.requires, ref), Callers: names(mn.callers, id)})
		}
	}
	for _, pn := range g.perms {
		if pn.shown {
			e.Permissions = append(e.Permissions, exportedPermission{Name: pn.p.String(), Mask: pn.p.Mask, Description: pn.p.Description,
				RequiredBy: names(pn.requiredBy, procedure), GrantedTo: names(pn.grantedTo, id)})
		}
	}
	for _, cn := range g.clients {
		if cn.shown {
			e.Clients = append(e.Clients, exportedClient{ID: cn.c.ID, Tier: cn.c.Tier,
				Grants: names(cn.grants, ref), UnknownGrants: cn.unknown, Calls: names(cn.calls, procedure)})
		}
	}
	return e
}

func names[N any](nodes []N, name func(N) string) []string {
	if len(nodes) == 0 {
		return nil
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = name(n)
	}
	return out
}
