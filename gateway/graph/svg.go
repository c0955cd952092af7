package graph

import (
	"fmt"
	"strconv"
)

// maxDrawn bounds the nodes drawn: past it, the drawing would be too tall
// to read, and the tables say it all.
const maxDrawn = 240

// drawing is the shown part of the graph laid out in three columns:
// clients, the permissions they are granted, and the methods that require
// them. Positions are in SVG user units.
type drawing struct {
	Width, Height int
	Columns       []heading
	Nodes         []drawnNode
	Edges         []drawnEdge
}

type heading struct {
	X     int
	Label string
}

type drawnNode struct {
	ID                 string
	X, Y, W, H         int
	TextX, TextY       int
	Label, Title       string
	Class, Query, Kind string
}

type drawnEdge struct {
	From, To, Path, Class string
}

// The layout's measures.
const (
	rowHeight  = 26
	nodeHeight = 20
	groupGap   = 10
	top        = 34
	charWidth  = 7 // of the 12px monospace labels, roughly
)

type columnLayout struct {
	x, w  int
	nodes []drawnNode
	y     int // the next node's top, before centring
}

func (c *columnLayout) add(id, label, title, class, query, kind string) {
	if fit := (c.w - 12) / charWidth; len(label) > fit {
		label = label[:fit-1] + "…"
	}
	c.nodes = append(c.nodes, drawnNode{ID: id, X: c.x, Y: c.y, W: c.w, H: nodeHeight,
		TextX: c.x + 6, TextY: c.y + 14, Label: label, Title: title, Class: class, Query: query, Kind: kind})
	c.y += rowHeight
}

func (c *columnLayout) gap() {
	if len(c.nodes) > 0 {
		c.y += groupGap
	}
}

// draw lays out the shown nodes, or reports how many there are when they
// are too many to draw (or none).
func (g *graph) draw() (*drawing, int) {
	clients := &columnLayout{x: 8, w: 170}
	perms := &columnLayout{x: 330, w: 240}
	methods := &columnLayout{x: 700, w: 320}
	ids := map[any]string{}
	n := 0
	for _, cn := range g.clients {
		if cn.shown {
			n++
			id := "c" + strconv.Itoa(n)
			ids[cn] = id
			clients.add(id, cn.c.ID, cn.chip().Title, "client", kindClient+":"+cn.c.ID, kindClient)
		}
	}
	for _, dn := range g.domains {
		perms.gap()
		for _, pn := range dn.perms {
			if pn.shown {
				n++
				id := "p" + strconv.Itoa(n)
				ids[pn] = id
				c := pn.chip()
				perms.add(id, c.Label, c.Title, dn.class, c.Query, kindPermission)
			}
		}
	}
	public := false
	for _, sn := range g.services {
		methods.gap()
		for _, mn := range sn.methods {
			if mn.shown {
				n++
				id := "m" + strconv.Itoa(n)
				ids[mn] = id
				c := mn.chip()
				methods.add(id, c.Label, c.Title, "method", c.Query, kindMethod)
				public = public || mn.m.Public
			}
		}
	}
	if public {
		perms.gap()
		perms.add("public", "public: anyone", "needs no token", "public", "", "")
	}
	if n == 0 || n > maxDrawn {
		return nil, n
	}

	height := max(clients.y, perms.y, methods.y)
	d := &drawing{Width: methods.x + methods.w + 8, Height: top + height}
	for _, c := range []struct {
		col   *columnLayout
		label string
	}{{clients, "Clients"}, {perms, "Permissions"}, {methods, "Methods"}} {
		if len(c.col.nodes) == 0 {
			continue
		}
		d.Columns = append(d.Columns, heading{X: c.col.x, Label: c.label})
		shift := top + (height-c.col.y)/2
		for _, node := range c.col.nodes {
			node.Y += shift
			node.TextY += shift
			d.Nodes = append(d.Nodes, node)
		}
	}
	at := map[string]drawnNode{}
	for _, node := range d.Nodes {
		at[node.ID] = node
	}
	edge := func(from, to, class string) {
		a, b := at[from], at[to]
		x1, y1, x2, y2 := a.X+a.W, a.Y+a.H/2, b.X, b.Y+b.H/2
		dx := (x2 - x1) / 2
		d.Edges = append(d.Edges, drawnEdge{From: from, To: to, Class: class,
			Path: fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", x1, y1, x1+dx, y1, x2-dx, y2, x2, y2)})
	}
	for _, cn := range g.clients {
		if !cn.shown {
			continue
		}
		for _, pn := range cn.grants {
			if pn.shown {
				edge(ids[cn], ids[pn], pn.domain.class)
			}
		}
	}
	for _, mn := range g.methods {
		if !mn.shown {
			continue
		}
		if mn.m.Public {
			edge("public", ids[mn], "public")
		}
		for _, pn := range mn.requires {
			if pn.shown {
				edge(ids[pn], ids[mn], pn.domain.class)
			}
		}
	}
	return d, 0
}
