package main

import (
	"fmt"
	"strings"
)

// methodAnswer is the answer to --method.
type methodAnswer struct {
	Method accessRow `json:"method"`
	// Clients can call the method: every client of the registry for a
	// public one. Nil without a registry.
	Clients *[]methodCaller `json:"clients,omitempty"`
	// Denied are the clients that cannot, with what they miss.
	Denied *[]methodDenied `json:"denied,omitempty"`
}

type methodCaller struct {
	clientRef
	// Through lists the client's grants that the call uses: the method's
	// required permissions; none for a public method.
	Through []string `json:"through"`
}

type methodDenied struct {
	clientRef
	Missing []string `json:"missing"`
}

// method answers --method: the method, and who can and cannot call it.
func (r *accessReport) method(procedure string) error {
	if !strings.HasPrefix(procedure, "/") {
		procedure = "/" + procedure
	}
	m, ok := r.cat.Method(procedure)
	if !ok {
		return fmt.Errorf("method %q is not in the catalog", procedure)
	}
	a := methodAnswer{Method: newAccessRow(m)}
	if r.joined {
		callers, denied := []methodCaller{}, []methodDenied{}
		for _, c := range r.clients {
			if c.canCall(m) {
				callers = append(callers, methodCaller{clientRef: c.ref(), Through: refs(m.Requires)})
			} else {
				denied = append(denied, methodDenied{clientRef: c.ref(), Missing: refs(m.Missing(c.masks))})
			}
		}
		a.Clients, a.Denied = &callers, &denied
	}
	if r.format == "json" {
		return writeJSON(r.w, a)
	}
	row := a.Method
	md := fmt.Sprintf("### `%s`\n\n| Access | Requires | Masks | Rate limit |\n|---|---|---|---|\n| %s | %s | %s | %s |\n",
		row.Procedure, row.access(), mdCell(row.requires()), row.masks(), row.rateLimit())
	if err := r.heading(md, "METHOD", row.Procedure, "ACCESS", row.access(), "REQUIRES", row.requires(),
		"MASKS", row.masks(), "RATE LIMIT", row.rateLimit()); err != nil {
		return err
	}
	if !r.joined {
		return nil
	}
	if m.Public {
		fmt.Fprintln(r.w, "\nAnyone can call it, with a token or without.")
		return nil
	}
	t := newSection(r.w, r.format)
	if len(*a.Clients) == 0 {
		t.note("No client of the registry can call it.")
	} else {
		t.table("Can call", "Tier", "Through")
		for _, c := range *a.Clients {
			t.row(t.code(c.ClientID), c.tierText(), list(c.Through))
		}
	}
	if len(*a.Denied) > 0 {
		t.table("Cannot call", "Tier", "Missing")
		for _, c := range *a.Denied {
			t.row(t.code(c.ClientID), c.tierText(), list(c.Missing))
		}
	}
	return t.flush()
}

// permissionAnswer is the answer to --permission.
type permissionAnswer struct {
	Permission requiredPerm `json:"permission"`
	// Methods require the permission, among others.
	Methods []accessRow `json:"methods"`
	// Clients hold the permission among their grants; nil without a
	// registry.
	Clients *[]clientRef `json:"clients,omitempty"`
}

// permission answers --permission: the methods that require it and the
// clients that hold it.
func (r *accessReport) permission(ref string) error {
	p, ok := r.cat.Permission(ref)
	if !ok {
		return fmt.Errorf("permission %q is not in the catalog", ref)
	}
	a := permissionAnswer{Permission: newRequiredPerm(p), Methods: []accessRow{}}
	for _, m := range r.cat.Methods() {
		for _, q := range m.Requires {
			if q == p {
				a.Methods = append(a.Methods, newAccessRow(m))
				break
			}
		}
	}
	if r.joined {
		holders := []clientRef{}
		for _, c := range r.clients {
			if c.masks[p.Domain]&p.Mask != 0 {
				holders = append(holders, c.ref())
			}
		}
		a.Clients = &holders
	}
	if r.format == "json" {
		return writeJSON(r.w, a)
	}
	mask := fmt.Sprintf("%s=%d", p.Domain, p.Mask)
	md := fmt.Sprintf("### Permission `%s`\n\nMask `%s`: %s\n", p, mask, mdCell(p.Description))
	if err := r.heading(md, "PERMISSION", p.String(), "MASK", mask, "DESCRIPTION", p.Description); err != nil {
		return err
	}
	t := newSection(r.w, r.format)
	if len(a.Methods) == 0 {
		t.note("No method requires it.")
	} else {
		t.table("Required by", "Requires")
		for _, row := range a.Methods {
			t.row(t.code(row.Procedure), row.requires())
		}
	}
	if a.Clients != nil {
		if len(*a.Clients) == 0 {
			t.note("No client of the registry holds it.")
		} else {
			t.table("Held by", "Tier")
			for _, c := range *a.Clients {
				t.row(t.code(c.ClientID), c.tierText())
			}
		}
	}
	return t.flush()
}

// clientAnswer is the answer to --client.
type clientAnswer struct {
	Client struct {
		clientRef
		Grants []string `json:"grants"`
	} `json:"client"`
	// Methods are those the client can call.
	Methods []clientMethod `json:"methods"`
	// Denied are the methods it cannot call, with what it misses.
	Denied []clientDenied `json:"denied"`
}

type clientMethod struct {
	Procedure string `json:"procedure"`
	Public    bool   `json:"public"`
	// Through lists the client's grants that the call uses; none for a
	// public method.
	Through []string `json:"through"`
}

type clientDenied struct {
	Procedure string   `json:"procedure"`
	Missing   []string `json:"missing"`
}

// client answers --client: the methods the client can call, and those it
// cannot.
func (r *accessReport) client(id, registry string) error {
	var c *accessClient
	for i := range r.clients {
		if r.clients[i].id == id {
			c = &r.clients[i]
		}
	}
	if c == nil {
		return fmt.Errorf("client %q is not in the registry %s", id, registry)
	}
	var a clientAnswer
	a.Client.clientRef, a.Client.Grants = c.ref(), refs(c.grants)
	a.Methods, a.Denied = []clientMethod{}, []clientDenied{}
	for _, m := range r.cat.Methods() {
		if c.canCall(m) {
			a.Methods = append(a.Methods, clientMethod{Procedure: m.Procedure, Public: m.Public, Through: refs(m.Requires)})
		} else {
			a.Denied = append(a.Denied, clientDenied{Procedure: m.Procedure, Missing: refs(m.Missing(c.masks))})
		}
	}
	if r.format == "json" {
		return writeJSON(r.w, a)
	}
	ref := a.Client.clientRef
	md := fmt.Sprintf("### Client `%s`\n\nTier: %s. Grants: %s.\n", ref.ClientID, ref.tierText(), list(a.Client.Grants))
	if err := r.heading(md, "CLIENT", ref.ClientID, "TIER", ref.tierText(), "GRANTS", list(a.Client.Grants)); err != nil {
		return err
	}
	t := newSection(r.w, r.format)
	if len(a.Methods) == 0 {
		t.note("It can call no method.")
	} else {
		t.table("Can call", "Through")
		for _, m := range a.Methods {
			through := list(m.Through)
			if m.Public {
				through = "public"
			}
			t.row(t.code(m.Procedure), through)
		}
	}
	if len(a.Denied) > 0 {
		t.table("Cannot call", "Missing")
		for _, m := range a.Denied {
			t.row(t.code(m.Procedure), list(m.Missing))
		}
	}
	return t.flush()
}
