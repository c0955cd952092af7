// Package graph serves the permission graph as a page: the catalog's
// domains and permissions, the methods that require them and, given the
// token issuer's clients, who is granted what and who can call which
// method. It answers questions such as "who can call LicensingService?"
// or "what can the reader client do?" at a glance, from the same
// declarations the gateway enforces.
//
// The page is rendered on the server from the catalog, with an inline
// drawing (SVG: clients, their permissions, the methods that require
// them) and tables; a small inline script narrows it as one types, and
// without the script the filter is a plain form. Nothing is fetched from
// elsewhere: the page works on an admin listener with no route out.
//
//	mux.Handle("GET /graph", graph.Handler(gw.Catalog(), func(ctx context.Context) ([]graph.Client, error) {
//		return clientsOfMyIssuer(ctx)
//	}))
//
// The query parameter q narrows the graph. "service:NAME", "method:PROCEDURE",
// "permission:DOMAIN.NAME", "domain:NAME" and "client:ID" name one node
// exactly (without regard to case); any other text is a list of words
// that must all be found in a method's procedure, a permission's or
// domain's name, or a client's id. What matches is shown with its
// neighbours: a method with the permissions it requires and the clients
// that can call it, a permission with the methods requiring it and the
// clients granted it, a client with its grants and the methods it can
// call. format=json answers the same graph as JSON, for tools.
package graph
