package rulecases

import (
	"strings"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// Base is a valid file, the "before" of every [Changes] case: domain ALP
// with READ (mask 1) and WRITE (mask 2), service Svc with Get (ALP.READ),
// Put (ALP.READ, ALP.WRITE), the public Ping and Hot (ALP.READ with every
// safeguard: max_token_age, high_value, sender_constrained, rate_limit),
// and service Batch whose
// Run inherits ALP.WRITE from the service's default.
const Base = Header + `
enum AlphaPermission {
  option (gateway.v1.domain) = {name: "ALP"};
  ALPHA_PERMISSION_UNSPECIFIED = 0;
  ALPHA_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  ALPHA_PERMISSION_WRITE = 2 [(gateway.v1.permission) = {mask: 2}];
}
message Req {}
service Svc {
  rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"]}; }
  rpc Put(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ", "ALP.WRITE"]}; }
  rpc Ping(Req) returns (Req) { option (gateway.v1.access) = {public: true}; }
  rpc Hot(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 300}, high_value: true, sender_constrained: true, rate_limit: {requests: 10, period: {seconds: 1}, burst: 5}}; }
}
service Batch {
  option (gateway.v1.default_access) = {requires: ["ALP.WRITE"]};
  rpc Run(Req) returns (Req);
}
`

// Change is a change a case must report.
type Change struct {
	Kind    catalog.ChangeKind
	Rule    catalog.Rule
	Element string
	Message string // a substring of the message
}

// ChangeCase is an edit of [Base] and the changes in access it makes.
type ChangeCase struct {
	Name  string
	After string   // Base, edited
	Want  []Change // in the order catalog.Diff sorts them
}

// edit returns Base with each old string of pairs (old, new, old, new...)
// replaced by its new string. It panics when an old string is not in Base,
// so that a case cannot silently stop making its change.
func edit(pairs ...string) string {
	s := Base
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("rulecases: " + pairs[i] + " is not in Base")
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

const (
	getAccess  = `rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"]}; }`
	pingAccess = `rpc Ping(Req) returns (Req) { option (gateway.v1.access) = {public: true}; }`
	hotAccess  = `rpc Hot(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 300}, high_value: true, sender_constrained: true, rate_limit: {requests: 10, period: {seconds: 1}, burst: 5}}; }`
)

// Changes lists edits of [Base] that follow each change rule.
var Changes = []ChangeCase{
	{
		Name:  "a method becomes public",
		After: edit(getAccess, `rpc Get(Req) returns (Req) { option (gateway.v1.access) = {public: true}; }`),
		Want:  []Change{{catalog.Loosened, catalog.RuleMethodPublic, "/test.v1.Svc/Get", "method is now public: it required ALP.READ"}},
	},
	{
		Name:  "a service's default access becomes public",
		After: edit(`default_access) = {requires: ["ALP.WRITE"]}`, `default_access) = {public: true}`),
		Want:  []Change{{catalog.Loosened, catalog.RuleMethodPublic, "/test.v1.Batch/Run", "method is now public: it required ALP.WRITE"}},
	},
	{
		Name:  "a method drops a requirement",
		After: edit(`["ALP.READ", "ALP.WRITE"]`, `["ALP.READ"]`),
		Want:  []Change{{catalog.Loosened, catalog.RuleRequirementRemoved, "/test.v1.Svc/Put", "method no longer requires ALP.WRITE"}},
	},
	{
		Name:  "a mask is given to another permission",
		After: edit("ALPHA_PERMISSION_WRITE", "ALPHA_PERMISSION_ADMIN", `"ALP.WRITE"`, `"ALP.ADMIN"`),
		Want: []Change{{catalog.Loosened, catalog.RuleMaskReused, "ALP.ADMIN",
			"mask 2 of domain ALP was the mask of ALP.WRITE: tokens granted ALP.WRITE now grant ALP.ADMIN"}},
	},
	{
		Name:  "a mask changes",
		After: edit(`WRITE = 2 [(gateway.v1.permission) = {mask: 2}]`, `WRITE = 2 [(gateway.v1.permission) = {mask: 4}]`),
		Want:  []Change{{catalog.Breaking, catalog.RuleMaskChanged, "ALP.WRITE", "mask of ALP.WRITE is now 4, was 2: tokens issued with 2 no longer grant it"}},
	},
	{
		Name: "two permissions swap masks",
		After: edit(`READ = 1 [(gateway.v1.permission) = {mask: 1}]`, `READ = 1 [(gateway.v1.permission) = {mask: 2}]`,
			`WRITE = 2 [(gateway.v1.permission) = {mask: 2}]`, `WRITE = 2 [(gateway.v1.permission) = {mask: 1}]`),
		Want: []Change{
			{catalog.Loosened, catalog.RuleMaskReused, "ALP.READ", "mask 2 of domain ALP was the mask of ALP.WRITE: tokens granted ALP.WRITE now grant ALP.READ"},
			{catalog.Loosened, catalog.RuleMaskReused, "ALP.WRITE", "mask 1 of domain ALP was the mask of ALP.READ: tokens granted ALP.READ now grant ALP.WRITE"},
			{catalog.Breaking, catalog.RuleMaskChanged, "ALP.READ", "mask of ALP.READ is now 2, was 1"},
			{catalog.Breaking, catalog.RuleMaskChanged, "ALP.WRITE", "mask of ALP.WRITE is now 1, was 2"},
		},
	},
	{
		Name:  "a domain is renamed",
		After: edit(`name: "ALP"`, `name: "ALPHA"`, `"ALP.`, `"ALPHA.`),
		Want: []Change{{catalog.Breaking, catalog.RuleDomainRenamed, "ALPHA",
			"domain ALP of test.v1.AlphaPermission is now ALPHA: tokens issued for ALP no longer grant its permissions"}},
	},
	{
		Name:  "a public method becomes protected",
		After: edit(pingAccess, `rpc Ping(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"]}; }`),
		Want:  []Change{{catalog.Tightened, catalog.RuleMethodProtected, "/test.v1.Svc/Ping", "public method now requires ALP.READ"}},
	},
	{
		Name:  "a method requires more",
		After: edit(getAccess, `rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ", "ALP.WRITE"]}; }`),
		Want:  []Change{{catalog.Tightened, catalog.RuleRequirementAdded, "/test.v1.Svc/Get", "method now also requires ALP.WRITE"}},
	},
	{
		Name: "methods are added and removed",
		After: edit(pingAccess, `rpc Del(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.WRITE"]}; }
  rpc Echo(Req) returns (Req) { option (gateway.v1.access) = {public: true}; }`),
		Want: []Change{
			{catalog.Added, catalog.RuleMethodAdded, "/test.v1.Svc/Del", "new method, requires ALP.WRITE"},
			{catalog.Added, catalog.RuleMethodAdded, "/test.v1.Svc/Echo", "new method, public"},
			{catalog.Removed, catalog.RuleMethodRemoved, "/test.v1.Svc/Ping", "method removed"},
		},
	},
	{
		Name:  "safeguards are dropped",
		After: edit(hotAccess, `rpc Hot(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 600}, rate_limit: {requests: 20, period: {seconds: 1}, burst: 5}}; }`),
		Want: []Change{
			{catalog.Loosened, catalog.RuleSafeguardDropped, "/test.v1.Svc/Hot", "max_token_age is now 10m0s, was 5m0s"},
			{catalog.Loosened, catalog.RuleSafeguardDropped, "/test.v1.Svc/Hot", "method is no longer high_value"},
			{catalog.Loosened, catalog.RuleSafeguardDropped, "/test.v1.Svc/Hot", "method is no longer sender_constrained"},
			{catalog.Loosened, catalog.RuleSafeguardDropped, "/test.v1.Svc/Hot", "rate_limit now admits more: 20 per 1s, burst 5, was 10 per 1s, burst 5"},
		},
	},
	{
		Name:  "a rate limit is removed",
		After: edit(hotAccess, `rpc Hot(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 300}, high_value: true, sender_constrained: true}; }`),
		Want:  []Change{{catalog.Loosened, catalog.RuleSafeguardDropped, "/test.v1.Svc/Hot", "rate_limit removed, was 10 per 1s, burst 5"}},
	},
	{
		Name: "safeguards are added",
		After: edit(getAccess, `rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 300}, high_value: true, sender_constrained: true}; }`,
			hotAccess, `rpc Hot(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 60}, high_value: true, sender_constrained: true, rate_limit: {requests: 10, period: {seconds: 1}, burst: 2}}; }`,
			pingAccess, `rpc Ping(Req) returns (Req) { option (gateway.v1.access) = {public: true, rate_limit: {requests: 60, period: {seconds: 60}}}; }`),
		Want: []Change{
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Get", "max_token_age is now 5m0s, was unset"},
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Get", "method is now high_value"},
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Get", "method is now sender_constrained"},
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Hot", "max_token_age is now 1m0s, was 5m0s"},
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Hot", "rate_limit now admits fewer: 10 per 1s, burst 2, was 10 per 1s, burst 5"},
			{catalog.Tightened, catalog.RuleSafeguardAdded, "/test.v1.Svc/Ping", "rate_limit is now 60 per 1m0s, burst 1, was unset"},
		},
	},
	{
		Name:  "nothing that touches access",
		After: edit("message Req {}", "// Req is any request.\nmessage Req { string id = 1; }"),
	},
}
