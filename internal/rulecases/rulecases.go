// Package rulecases holds test declarations that break each rule of the
// catalog, and pairs of declarations that change access, so that every
// tool enforcing the rules (catalog.New, catalog.Diff, portcullis check,
// the buf plugin) is tested on the same cases.
package rulecases

import "github.com/portcullis/portcullis/gateway/catalog"

// File is the name of the file every case declares.
const File = "test.proto"

// Header starts every case's file.
const Header = `syntax = "proto3";
package test.v1;
import "gateway/v1/options.proto";
`

// Domains declares two valid domains, ALP and BET, and a message Req.
const Domains = `
enum AlphaPermission {
  option (gateway.v1.domain) = {name: "ALP", description: "Alpha"};
  ALPHA_PERMISSION_UNSPECIFIED = 0;
  ALPHA_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  ALPHA_PERMISSION_WRITE = 2 [(gateway.v1.permission) = {mask: 2}];
}
enum BetaPermission {
  option (gateway.v1.domain) = {name: "BET"};
  BETA_PERMISSION_UNSPECIFIED = 0;
  BETA_PERMISSION_USE = 1 [(gateway.v1.permission) = {mask: 4503599627370496}]; // 2^52
}
message Req {}
`

// Service wraps method declarations in service Svc, after [Header] and
// [Domains].
func Service(methods string) string {
	return Header + Domains + "service Svc {\n" + methods + "\n}\n"
}

// Problem is a problem a case must report.
type Problem struct {
	Element string       // the full name of the element
	Rule    catalog.Rule // the rule it breaks
	Message string       // a substring of the message
}

// Case is a file that breaks rules.
type Case struct {
	Name   string
	Source string    // the text of [File]
	Want   []Problem // every problem it has
}

// Invalid lists files that break every rule that a .proto source can
// break: all but [catalog.RuleUnreadableOption].
var Invalid = []Case{
	{
		Name: "mask not a power of two",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_A = 1 [(gateway.v1.permission) = {mask: 3}]; }`,
		Want: []Problem{{"test.v1.P_A", catalog.RuleMaskPowerOfTwo, "mask 3 of D.A is not a power of two"}},
	},
	{
		Name: "mask zero",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_A = 1 [(gateway.v1.permission) = {}]; }`,
		Want: []Problem{{"test.v1.P_A", catalog.RuleMaskPowerOfTwo, "mask 0 of D.A"}},
	},
	{
		Name: "mask above 2^52",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_A = 1 [(gateway.v1.permission) = {mask: 9007199254740992}]; }`,
		Want: []Problem{{"test.v1.P_A", catalog.RuleMaskRange, "mask 9007199254740992 of D.A is above 2^52"}},
	},
	{
		Name: "duplicate mask",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_A = 1 [(gateway.v1.permission) = {mask: 8}];
				P_B = 2 [(gateway.v1.permission) = {mask: 8}]; }`,
		Want: []Problem{{"test.v1.P_B", catalog.RuleDuplicateMask, "mask 8 of D.B is already the mask of D.A"}},
	},
	{
		Name: "duplicate permission name",
		// proto3 forbids such names; proto2 allows them.
		Source: `syntax = "proto2"; package test.v1; import "gateway/v1/options.proto";
				enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_READ = 1 [(gateway.v1.permission) = {mask: 1}];
				READ = 2 [(gateway.v1.permission) = {mask: 2}]; }`,
		Want: []Problem{{"test.v1.READ", catalog.RuleDuplicatePermission, "permission D.READ is already declared by test.v1.P_READ"}},
	},
	{
		Name: "permission name not upper case",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0;
				P_read = 1 [(gateway.v1.permission) = {mask: 1}]; }`,
		Want: []Problem{{"test.v1.P_read", catalog.RulePermissionName, `permission name "read"`}},
	},
	{
		Name: "duplicate domain",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0; }
				enum Q { option (gateway.v1.domain) = {name: "D"}; Q_NONE = 0; }`,
		Want: []Problem{{"test.v1.Q", catalog.RuleDuplicateDomain, `domain "D" is already declared by test.v1.P`}},
	},
	{
		Name: "domain names",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "lic"}; P_NONE = 0; }
				enum Q { option (gateway.v1.domain) = {name: "ABCDEFGHIJKLMNOPQ"}; Q_NONE = 0; }
				enum R { option (gateway.v1.domain) = {name: "1X"}; R_NONE = 0; }
				enum S { option (gateway.v1.domain) = {}; S_NONE = 0; }
				enum T { option (gateway.v1.domain) = {name: "L.C"}; T_NONE = 0; }`,
		Want: []Problem{
			{"test.v1.P", catalog.RuleDomainName, `domain name "lic"`},
			{"test.v1.Q", catalog.RuleDomainName, `domain name "ABCDEFGHIJKLMNOPQ"`},
			{"test.v1.R", catalog.RuleDomainName, `domain name "1X"`},
			{"test.v1.S", catalog.RuleDomainName, `domain name ""`},
			{"test.v1.T", catalog.RuleDomainName, `domain name "L.C"`},
		},
	},
	{
		Name:   "value without permission",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0; P_A = 1; }`,
		Want:   []Problem{{"test.v1.P_A", catalog.RuleMissingPermission, "value of domain D has no (gateway.v1.permission)"}},
	},
	{
		Name: "permission on zero value and outside a domain",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "D"}; P_NONE = 0 [(gateway.v1.permission) = {mask: 1}]; }
				message M { enum Q { Q_NONE = 0; Q_A = 1 [(gateway.v1.permission) = {mask: 1}]; } }`,
		Want: []Problem{
			{"test.v1.M.Q_A", catalog.RuleStrayPermission, "enum Q has no (gateway.v1.domain)"},
			{"test.v1.P_NONE", catalog.RuleStrayPermission, "the zero value of a domain enum cannot be a permission"},
		},
	},
	{
		Name:   "method without access",
		Source: Service(`rpc Get(Req) returns (Req);`),
		Want:   []Problem{{"test.v1.Svc.Get", catalog.RuleNoAccess, "method declares no (gateway.v1.access) and service Svc no (gateway.v1.default_access)"}},
	},
	{
		Name:   "empty access",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {}; }`),
		Want:   []Problem{{"test.v1.Svc.Get", catalog.RuleEmptyAccess, "neither public: true nor any requires"}},
	},
	{
		Name:   "empty service default",
		Source: Service(`option (gateway.v1.default_access) = {rate_limit: {requests: 1, period: {seconds: 1}}}; rpc Get(Req) returns (Req);`),
		Want:   []Problem{{"test.v1.Svc.Get", catalog.RuleEmptyAccess, "neither public: true nor any requires"}},
	},
	{
		Name:   "public and requires",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {public: true, requires: ["ALP.READ"]}; }`),
		Want:   []Problem{{"test.v1.Svc.Get", catalog.RulePublicAndRequires, "method is public and requires ALP.READ"}},
	},
	{
		Name:   "bad references",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP_READ", "NOPE.READ", "ALP.FLY", ".READ"]}; }`),
		Want: []Problem{
			{"test.v1.Svc.Get", catalog.RuleBadReference, `requirement "ALP_READ" is not written DOMAIN.NAME`},
			{"test.v1.Svc.Get", catalog.RuleUnknownDomain, `requirement "NOPE.READ" names unknown domain "NOPE"`},
			{"test.v1.Svc.Get", catalog.RuleUnknownPermission, `requirement "ALP.FLY" names no permission of domain ALP`},
			{"test.v1.Svc.Get", catalog.RuleBadReference, `requirement ".READ" is not written DOMAIN.NAME`},
		},
	},
	{
		Name: "rate limits",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {public: true, rate_limit: {period: {seconds: 1}}}; }
				rpc Put(Req) returns (Req) { option (gateway.v1.access) = {public: true, rate_limit: {requests: 5}}; }
				rpc Del(Req) returns (Req) { option (gateway.v1.access) = {public: true, rate_limit: {requests: 5, period: {nanos: 1000}}}; }`),
		Want: []Problem{
			{"test.v1.Svc.Del", catalog.RuleRateLimit, "rate_limit.period must be at least 1ms"},
			{"test.v1.Svc.Get", catalog.RuleRateLimit, "rate_limit.requests must be at least 1"},
			{"test.v1.Svc.Put", catalog.RuleRateLimit, "rate_limit.period must be at least 1ms"},
		},
	},
	{
		Name:   "message limit without client stream",
		Source: Service(`rpc Get(Req) returns (stream Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], stream_message_limit: {requests: 5, period: {seconds: 1}}}; }`),
		Want:   []Problem{{"test.v1.Svc.Get", catalog.RuleStreamMessageLimit, "the method has no client stream"}},
	},
	{
		Name: "max token age",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {nanos: 500000000}}; }
				rpc Put(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 60, nanos: 1}}; }
				rpc Del(Req) returns (Req) { option (gateway.v1.access) = {public: true, max_token_age: {seconds: 60}}; }
				rpc Ok(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], max_token_age: {seconds: 60}, high_value: true}; }`),
		Want: []Problem{
			{"test.v1.Svc.Del", catalog.RuleMaxTokenAge, "max_token_age is set, but the method is public"},
			{"test.v1.Svc.Get", catalog.RuleMaxTokenAge, "max_token_age must be whole seconds, at least 1s"},
			{"test.v1.Svc.Put", catalog.RuleMaxTokenAge, "max_token_age must be whole seconds, at least 1s"},
		},
	},
	{
		Name: "sender-constrained public method",
		Source: Service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {public: true, sender_constrained: true}; }
				rpc Ok(Req) returns (Req) { option (gateway.v1.access) = {requires: ["ALP.READ"], sender_constrained: true}; }`),
		Want: []Problem{{"test.v1.Svc.Get", catalog.RuleSenderConstrained, "sender_constrained is set, but the method is public"}},
	},
	{
		Name: "every problem at once",
		Source: Header + `enum P { option (gateway.v1.domain) = {name: "p"}; P_NONE = 0; P_A = 1 [(gateway.v1.permission) = {mask: 6}]; }
				message Req {}
				service Svc {
				  rpc A(Req) returns (Req);
				  rpc B(Req) returns (Req) { option (gateway.v1.access) = {requires: ["X.Y"]}; }
				}`,
		Want: []Problem{
			{"test.v1.P", catalog.RuleDomainName, `domain name "p"`},
			{"test.v1.P_A", catalog.RuleMaskPowerOfTwo, "mask 6"},
			{"test.v1.Svc.A", catalog.RuleNoAccess, "declares no"},
			{"test.v1.Svc.B", catalog.RuleUnknownDomain, `unknown domain "X"`},
		},
	},
}
