package catalog

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
)

// vocabularyFile is the file that declares the options. The catalog covers
// the services of every file that imports it.
const vocabularyFile = "gateway/v1/options.proto"

// New builds the catalog of files: every domain declared in them, and every
// method of every service whose file imports the vocabulary
// (gateway/v1/options.proto). It returns a [*ValidationError] listing every
// problem of severity [SeverityError] when the declarations are not valid:
// every problem, unless [WithServices] names the services the catalog is
// for. It reports invalid options as an error too.
func New(files *protoregistry.Files, opts ...Option) (*Catalog, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b := &builder{
		cat: &Catalog{
			files:       files,
			domainIndex: make(map[string]*Domain),
		},
		users: make(map[string]map[protoreflect.FullName]bool),
	}
	var governed []protoreflect.FileDescriptor
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		b.domainsIn(fd.Enums())
		for i := range fd.Messages().Len() {
			b.domainsInMessage(fd.Messages().Get(i))
		}
		if importsVocabulary(fd) {
			governed = append(governed, fd)
		}
		return true
	})
	slices.SortFunc(b.cat.domains, func(a, b *Domain) int { return strings.Compare(a.Name, b.Name) })
	for _, fd := range governed {
		for i := range fd.Services().Len() {
			b.service(fd.Services().Get(i))
		}
	}
	return b.finish(cfg)
}

func importsVocabulary(fd protoreflect.FileDescriptor) bool {
	imports := fd.Imports()
	for i := range imports.Len() {
		if imports.Get(i).Path() == vocabularyFile {
			return true
		}
	}
	return false
}

type builder struct {
	cat      *Catalog
	problems []found
	// users holds, by domain name, the services that require a permission
	// of the domain, in a method's access or the service's default.
	users map[string]map[protoreflect.FullName]bool
}

// scope is what an element belongs to: the definition of a domain, a
// service, or neither.
type scope struct {
	domain  string
	service protoreflect.FullName
}

// found is a problem whose services and severity are not known yet.
type found struct {
	Problem
	domain string // the domain whose definition holds the element, or ""
}

func (b *builder) report(in scope, desc protoreflect.Descriptor, rule Rule, format string, args ...any) {
	file := desc.ParentFile()
	p := Problem{File: file.Path(), Element: string(desc.FullName()), Rule: rule, Message: fmt.Sprintf(format, args...)}
	p.Line, p.Column = position(desc)
	if in.service != "" {
		p.Services = []protoreflect.FullName{in.service}
	}
	b.problems = append(b.problems, found{Problem: p, domain: in.domain})
}

// requires notes the domains that service sd requires in access.
func (b *builder) requires(sd protoreflect.ServiceDescriptor, access *gatewayv1.Access) {
	for _, ref := range access.GetRequires() {
		domain, _, _ := strings.Cut(ref, ".")
		if b.users[domain] == nil {
			b.users[domain] = make(map[protoreflect.FullName]bool)
		}
		b.users[domain][sd.FullName()] = true
	}
}

func (b *builder) domainsInMessage(md protoreflect.MessageDescriptor) {
	b.domainsIn(md.Enums())
	for i := range md.Messages().Len() {
		b.domainsInMessage(md.Messages().Get(i))
	}
}

func (b *builder) domainsIn(enums protoreflect.EnumDescriptors) {
	for i := range enums.Len() {
		b.enum(enums.Get(i))
	}
}

// finish settles each problem's services and severity. It fails on any
// error; otherwise it leaves out of the catalog every service a warning
// touches, with its methods.
func (b *builder) finish(cfg *config) (*Catalog, error) {
	var errs, warnings []Problem
	touched := make(map[protoreflect.FullName]bool)
	for _, f := range b.problems {
		p := f.Problem
		if f.domain != "" {
			p.Services = slices.Sorted(maps.Keys(b.users[f.domain]))
		}
		p.Severity = cfg.severity(p.Services)
		for _, s := range p.Services {
			touched[s] = true
		}
		if p.Severity == SeverityError {
			errs = append(errs, p)
		} else {
			warnings = append(warnings, p)
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Problems: sortProblems(errs)}
	}
	cat := b.cat
	cat.warnings = sortProblems(warnings)
	cat.services = slices.DeleteFunc(cat.services, func(sd protoreflect.ServiceDescriptor) bool { return touched[sd.FullName()] })
	cat.ordered = slices.DeleteFunc(cat.ordered, func(m *Method) bool { return touched[m.Descriptor.Parent().FullName()] })
	slices.SortFunc(cat.services, func(x, y protoreflect.ServiceDescriptor) int {
		return strings.Compare(string(x.FullName()), string(y.FullName()))
	})
	slices.SortFunc(cat.ordered, func(x, y *Method) int { return strings.Compare(x.Procedure, y.Procedure) })
	cat.methods = make(map[string]*Method, len(cat.ordered))
	for _, m := range cat.ordered {
		cat.methods[m.Procedure] = m
	}
	return cat, nil
}

// sortProblems sorts problems by file and position. Without source info,
// a file's problems stay in the order found: its domains, then its
// services, each in declaration order.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(x, y Problem) int {
		return cmp.Or(strings.Compare(x.File, y.File), cmp.Compare(x.Line, y.Line), cmp.Compare(x.Column, y.Column))
	})
	return ps
}
