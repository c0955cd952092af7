package main

import (
	"strings"

	"buf.build/go/bufplugin/check"
	"buf.build/go/bufplugin/info"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// The plugin's categories.
const (
	// categoryAll holds every lint rule, and the breaking rules of
	// loosened and breaking changes: what a team wants by default.
	categoryAll = "PORTCULLIS"
	// categoryTightened holds the breaking rules of tightened changes,
	// which callers notice but which grant nobody anything.
	categoryTightened = "PORTCULLIS_TIGHTENED"
)

// ruleID returns the plugin's ID of a catalog rule: PORTCULLIS_ and the
// rule's name in upper snake case.
func ruleID(r catalog.Rule) string {
	return "PORTCULLIS_" + strings.ToUpper(strings.ReplaceAll(string(r), "-", "_"))
}

// newSpec returns the plugin's rules: one lint rule per validation rule of
// the catalog, one breaking rule per change rule of a loosened, breaking
// or tightened kind. Added and removed methods change no access a caller
// had, and buf's own rules watch removals.
func newSpec() *check.Spec {
	var rules []*check.RuleSpec
	for _, r := range catalog.Rules() {
		rules = append(rules, &check.RuleSpec{
			ID:          ruleID(r),
			CategoryIDs: []string{categoryAll},
			Default:     true,
			Purpose:     r.Purpose(),
			Type:        check.RuleTypeLint,
			Handler:     lintHandler(r),
		})
	}
	for _, r := range catalog.ChangeRules() {
		category, ok := map[catalog.ChangeKind]string{
			catalog.Loosened:  categoryAll,
			catalog.Breaking:  categoryAll,
			catalog.Tightened: categoryTightened,
		}[r.Kind()]
		if !ok {
			continue
		}
		rules = append(rules, &check.RuleSpec{
			ID:          ruleID(r),
			CategoryIDs: []string{category},
			Default:     category == categoryAll,
			Purpose:     r.Purpose(),
			Type:        check.RuleTypeBreaking,
			Handler:     breakingHandler(r),
		})
	}
	return &check.Spec{
		Rules: rules,
		Categories: []*check.CategorySpec{
			{ID: categoryAll, Purpose: "Checks the access that methods declare, and that changes do not loosen it or break tokens already issued."},
			{ID: categoryTightened, Purpose: "Checks that changes do not tighten the access that methods declare."},
		},
		Before: before,
		Info: &info.Spec{
			Documentation: "Portcullis: the permissions that protobuf methods require, checked as the gateway checks them.",
		},
	}
}
