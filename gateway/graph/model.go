package graph

import (
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// graph is the permission graph of a catalog and a list of clients:
// clients are granted permissions, which methods require. A client can
// call a method when it is granted every permission the method requires.
type graph struct {
	domains  []*domainNode
	perms    []*permNode // by domain, then declaration
	services []*serviceNode
	methods  []*methodNode // by procedure
	clients  []*clientNode // by id
	// withClients: the clients are known, so "no client can call it"
	// means something.
	withClients bool
}

type domainNode struct {
	d     *catalog.Domain
	perms []*permNode
	class string // the colour of its permissions: "d0", "d1", ...
}

type permNode struct {
	p          *catalog.Permission
	domain     *domainNode
	requiredBy []*methodNode
	grantedTo  []*clientNode
	shown      bool
}

type serviceNode struct {
	name    string // full name
	methods []*methodNode
}

type methodNode struct {
	m        *catalog.Method
	service  *serviceNode
	requires []*permNode
	callers  []*clientNode // for a method that requires permissions
	shown    bool
}

type clientNode struct {
	c       Client
	grants  []*permNode // in the order of c.Grants
	unknown []string    // grants naming no permission of the catalog
	calls   []*methodNode
	shown   bool
}

// name returns the method's name, such as "ListRequirements".
func (m *methodNode) name() string { return string(m.m.Descriptor.Name()) }

// newGraph builds the graph of cat and clients.
func newGraph(cat *catalog.Catalog, clients []Client, withClients bool) *graph {
	g := &graph{withClients: withClients}
	byRef := map[string]*permNode{}
	for i, d := range cat.Domains() {
		dn := &domainNode{d: d, class: "d" + strconv.Itoa(i%paletteSize)}
		for _, p := range d.Permissions {
			pn := &permNode{p: p, domain: dn}
			dn.perms = append(dn.perms, pn)
			g.perms = append(g.perms, pn)
			byRef[p.String()] = pn
		}
		g.domains = append(g.domains, dn)
	}
	services := map[string]*serviceNode{}
	for _, m := range cat.Methods() {
		name := string(m.Descriptor.Parent().FullName())
		sn := services[name]
		if sn == nil {
			sn = &serviceNode{name: name}
			services[name] = sn
			g.services = append(g.services, sn)
		}
		mn := &methodNode{m: m, service: sn}
		for _, p := range m.Requires {
			pn := byRef[p.String()]
			mn.requires = append(mn.requires, pn)
			pn.requiredBy = append(pn.requiredBy, mn)
		}
		sn.methods = append(sn.methods, mn)
		g.methods = append(g.methods, mn)
	}
	slices.SortFunc(g.services, func(a, b *serviceNode) int { return strings.Compare(a.name, b.name) })

	clients = slices.Clone(clients)
	slices.SortFunc(clients, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range clients {
		cn := &clientNode{c: c}
		masks := map[string]uint64{}
		for _, ref := range c.Grants {
			pn, ok := byRef[ref]
			if !ok {
				cn.unknown = append(cn.unknown, ref)
				continue
			}
			if slices.Contains(cn.grants, pn) {
				continue
			}
			cn.grants = append(cn.grants, pn)
			pn.grantedTo = append(pn.grantedTo, cn)
			masks[pn.p.Domain] |= pn.p.Mask
		}
		for _, mn := range g.methods {
			if !mn.m.Public && mn.m.Allows(masks) {
				cn.calls = append(cn.calls, mn)
				mn.callers = append(mn.callers, cn)
			}
		}
		g.clients = append(g.clients, cn)
	}
	return g
}

// The kinds of node a query may name exactly, as "kind:name".
const (
	kindDomain     = "domain"
	kindPermission = "permission"
	kindService    = "service"
	kindMethod     = "method"
	kindClient     = "client"
)

var kinds = []string{kindService, kindMethod, kindPermission, kindDomain, kindClient}

// match marks what a query shows, and reports whether anything matched.
//
// A query "kind:name" names one node exactly (without regard to case): a
// service or domain by name, a method by procedure, a permission by
// reference, a client by id. Any other query is a list of words, each of
// which must be in a node's name (without regard to case): a method's
// procedure (which holds its service's name), a permission's reference, a
// domain's name, a client's id. The empty query shows everything.
//
// What matched is shown with its neighbours: a method with the
// permissions it requires and the clients that can call it; a permission
// with the methods that require it and the clients granted it; a client
// with its grants and the methods it can call. A service or a domain
// stands for its methods or its permissions.
func (g *graph) match(query string) bool {
	query = strings.TrimSpace(query)
	if query == "" {
		for _, pn := range g.perms {
			pn.shown = true
		}
		for _, mn := range g.methods {
			mn.shown = true
		}
		for _, cn := range g.clients {
			cn.shown = true
		}
		return true
	}
	matches := wordMatcher(query)
	kind, name, exact := strings.Cut(query, ":")
	if exact && slices.Contains(kinds, strings.ToLower(kind)) {
		kind = strings.ToLower(kind)
		name = strings.TrimSpace(name)
		matches = func(k, s string) bool { return k == kind && strings.EqualFold(s, name) }
	}
	var methods []*methodNode
	var perms []*permNode
	var clients []*clientNode
	for _, mn := range g.methods {
		if matches(kindMethod, mn.m.Procedure) || matches(kindService, mn.service.name) {
			methods = append(methods, mn)
		}
	}
	for _, dn := range g.domains {
		for _, pn := range dn.perms {
			if matches(kindDomain, dn.d.Name) || matches(kindPermission, pn.p.String()) {
				perms = append(perms, pn)
			}
		}
	}
	for _, cn := range g.clients {
		if matches(kindClient, cn.c.ID) {
			clients = append(clients, cn)
		}
	}
	for _, mn := range methods {
		mn.shown = true
		for _, pn := range mn.requires {
			pn.shown = true
		}
		for _, cn := range mn.callers {
			cn.shown = true
		}
	}
	for _, pn := range perms {
		pn.shown = true
		for _, mn := range pn.requiredBy {
			mn.shown = true
		}
		for _, cn := range pn.grantedTo {
			cn.shown = true
		}
	}
	for _, cn := range clients {
		cn.shown = true
		for _, pn := range cn.grants {
			pn.shown = true
		}
		for _, mn := range cn.calls {
			mn.shown = true
		}
	}
	return len(methods)+len(perms)+len(clients) > 0
}

// wordMatcher matches names that hold every word of query, without regard
// to case, whatever their kind.
func wordMatcher(query string) func(kind, name string) bool {
	words := strings.Fields(strings.ToLower(query))
	return func(_, name string) bool {
		name = strings.ToLower(name)
		for _, w := range words {
			if !strings.Contains(name, w) {
				return false
			}
		}
		return true
	}
}
