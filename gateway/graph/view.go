package graph

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// paletteSize is the number of domain colours of the page's style.
const paletteSize = 6

// page is what the page shows.
type page struct {
	Query        string
	Matched      bool
	Total, Shown counts
	Services     []serviceView
	Domains      []domainView
	Clients      []clientView
	WithClients  bool
	ClientsError string
	Choices      []choiceGroup
	Drawing      *drawing // nil when there is nothing to draw or too much
	Undrawn      int      // nodes not drawn, when too many
}

type counts struct {
	Domains, Permissions, Services, Methods, Clients int
}

// chip is a node named in a table cell: a link that filters to it.
type chip struct {
	Label, Query, Class, Title string
}

type serviceView struct {
	Name    string
	Methods []methodView
}

type methodView struct {
	Name, Procedure, Kind, RateLimit string
	Public                           bool
	Requires, Callers                []chip
	NoCaller                         bool // no known client can call it
}

type domainView struct {
	Name, Description, Class string
	Permissions              []permView
}

type permView struct {
	Chip                  chip
	Mask                  uint64
	Description           string
	RequiredBy, GrantedTo []chip
}

type clientView struct {
	Chip          chip
	Tier          string
	Grants, Calls []chip
	Unknown       []string
}

type choiceGroup struct {
	Label   string
	Choices []chip
}

func (g *graph) page(query string, clientsErr error) *page {
	p := &page{Query: query, Matched: g.match(query), WithClients: g.withClients}
	if clientsErr != nil {
		p.ClientsError = clientsErr.Error()
	}
	p.Total = counts{Domains: len(g.domains), Permissions: len(g.perms), Services: len(g.services), Methods: len(g.methods), Clients: len(g.clients)}
	for _, sn := range g.services {
		var methods []methodView
		for _, mn := range sn.methods {
			if mn.shown {
				methods = append(methods, mn.view(g.withClients))
			}
		}
		if len(methods) > 0 {
			p.Services = append(p.Services, serviceView{Name: sn.name, Methods: methods})
			p.Shown.Services++
			p.Shown.Methods += len(methods)
		}
	}
	for _, dn := range g.domains {
		var perms []permView
		for _, pn := range dn.perms {
			if pn.shown {
				perms = append(perms, permView{
					Chip: pn.chip(), Mask: pn.p.Mask, Description: pn.p.Description,
					RequiredBy: chips(pn.requiredBy, (*methodNode).chip), GrantedTo: chips(pn.grantedTo, (*clientNode).chip),
				})
			}
		}
		if len(perms) > 0 {
			p.Domains = append(p.Domains, domainView{Name: dn.d.Name, Description: dn.d.Description, Class: dn.class, Permissions: perms})
			p.Shown.Domains++
			p.Shown.Permissions += len(perms)
		}
	}
	for _, cn := range g.clients {
		if cn.shown {
			p.Clients = append(p.Clients, clientView{
				Chip: cn.chip(), Tier: cn.c.Tier, Unknown: cn.unknown,
				Grants: chips(cn.grants, (*permNode).chip), Calls: chips(cn.calls, (*methodNode).chip),
			})
			p.Shown.Clients++
		}
	}
	p.Choices = g.choices()
	p.Drawing, p.Undrawn = g.draw()
	return p
}

func (mn *methodNode) view(withClients bool) methodView {
	v := methodView{
		Name: mn.name(), Procedure: mn.m.Procedure, Kind: streamKind(mn.m), Public: mn.m.Public,
		Requires: chips(mn.requires, (*permNode).chip), Callers: chips(mn.callers, (*clientNode).chip),
	}
	v.NoCaller = withClients && !v.Public && len(v.Callers) == 0
	if r := mn.m.RateLimit; r != nil {
		v.RateLimit = fmt.Sprintf("%d per %s, burst %d", r.Requests, shortDuration(r.Period), r.Burst)
	}
	return v
}

// shortDuration writes d without its zero units: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func streamKind(m *catalog.Method) string {
	switch d := m.Descriptor; {
	case d.IsStreamingClient() && d.IsStreamingServer():
		return "bidi streaming"
	case d.IsStreamingClient():
		return "client streaming"
	case d.IsStreamingServer():
		return "server streaming"
	}
	return ""
}

func (pn *permNode) chip() chip {
	return chip{Label: pn.p.String(), Query: kindPermission + ":" + pn.p.String(), Class: pn.domain.class,
		Title: fmt.Sprintf("%s (mask %d)", pn.p.Description, pn.p.Mask)}
}

func (mn *methodNode) chip() chip {
	return chip{Label: shortService(mn.service.name) + "/" + mn.name(), Query: kindMethod + ":" + mn.m.Procedure, Class: "method", Title: mn.m.Procedure}
}

func (cn *clientNode) chip() chip {
	title := "client " + cn.c.ID
	if cn.c.Tier != "" {
		title += ", tier " + cn.c.Tier
	}
	return chip{Label: cn.c.ID, Query: kindClient + ":" + cn.c.ID, Class: "client", Title: title}
}

func chips[N any](nodes []N, chipOf func(N) chip) []chip {
	out := make([]chip, len(nodes))
	for i, n := range nodes {
		out[i] = chipOf(n)
	}
	return out
}

// shortService returns a service's name without its package.
func shortService(full string) string {
	return full[strings.LastIndexByte(full, '.')+1:]
}

// choices lists every node a query may name exactly, for the picker.
func (g *graph) choices() []choiceGroup {
	groups := []choiceGroup{{Label: "Services"}, {Label: "Permissions"}, {Label: "Clients"}}
	for _, sn := range g.services {
		groups[0].Choices = append(groups[0].Choices, chip{Label: sn.name, Query: kindService + ":" + sn.name})
	}
	for _, pn := range g.perms {
		groups[1].Choices = append(groups[1].Choices, chip{Label: pn.p.String(), Query: kindPermission + ":" + pn.p.String()})
	}
	for _, cn := range g.clients {
		groups[2].Choices = append(groups[2].Choices, chip{Label: cn.c.ID, Query: kindClient + ":" + cn.c.ID})
	}
	if len(groups[2].Choices) == 0 {
		groups = groups[:2]
	}
	return groups
}
