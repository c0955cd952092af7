package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// heading writes the heading of an answer: markdown as it is, or in text
// the label and value pairs as aligned lines.
func (r *accessReport) heading(markdown string, pairs ...string) error {
	if r.format == "markdown" {
		_, err := io.WriteString(r.w, markdown)
		return err
	}
	tw := newTabWriter(r.w)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s\t%s\n", pairs[i], pairs[i+1])
	}
	return tw.Flush()
}

// section writes the tables and notes after an answer's heading, each
// after a blank line: aligned columns with upper-case headings in text,
// Markdown tables in markdown.
type section struct {
	w        io.Writer
	markdown bool
	tw       *tabwriter.Writer
	err      error
}

func newSection(w io.Writer, format string) *section {
	return &section{w: w, markdown: format == "markdown"}
}

// table starts a table with the given column headings.
func (s *section) table(headings ...string) {
	s.end()
	fmt.Fprintln(s.w)
	if s.markdown {
		fmt.Fprintf(s.w, "| %s |\n|%s\n", strings.Join(headings, " | "), strings.Repeat("---|", len(headings)))
		return
	}
	s.tw = newTabWriter(s.w)
	fmt.Fprintln(s.tw, strings.ToUpper(strings.Join(headings, "\t")))
}

// row adds a row to the current table.
func (s *section) row(cells ...string) {
	if s.markdown {
		for i, c := range cells {
			cells[i] = mdCell(c)
		}
		fmt.Fprintf(s.w, "| %s |\n", strings.Join(cells, " | "))
		return
	}
	fmt.Fprintln(s.tw, strings.Join(cells, "\t"))
}

// code marks s as code in Markdown.
func (s *section) code(v string) string {
	if s.markdown {
		return "`" + v + "`"
	}
	return v
}

// note writes a sentence of its own.
func (s *section) note(text string) {
	s.end()
	fmt.Fprintf(s.w, "\n%s\n", text)
}

// end flushes the current table.
func (s *section) end() {
	if s.tw != nil {
		if err := s.tw.Flush(); err != nil && s.err == nil {
			s.err = err
		}
		s.tw = nil
	}
}

// flush ends the last table and reports any write error.
func (s *section) flush() error {
	s.end()
	return s.err
}
