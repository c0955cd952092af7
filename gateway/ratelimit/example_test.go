package ratelimit_test

import (
	"fmt"
	"log"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
)

func ExampleMemory_AllowAt() {
	store, err := ratelimit.NewMemory()
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	// 4 requests every 5 seconds, 2 at once.
	limit := ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 2}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 1250 * time.Millisecond} {
		r := store.AllowAt(start.Add(at), "client-1", limit, 1)
		fmt.Printf("t=%-6s allowed=%-5t remaining=%d retry after %s\n", at, r.Allowed, r.Remaining, r.RetryAfter)
	}
	// Output:
	// t=0s     allowed=true  remaining=1 retry after 0s
	// t=0s     allowed=true  remaining=0 retry after 0s
	// t=0s     allowed=false remaining=0 retry after 1.25s
	// t=1.25s  allowed=true  remaining=0 retry after 0s
}

func ExamplePolicy_Limits() {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		log.Fatal(err)
	}
	policy := ratelimit.Policy{
		Default: &catalog.RateLimit{Requests: 10, Period: time.Second, Burst: 5},
		Tiers: map[string]ratelimit.Tier{
			"pro":        {Multiplier: 2},
			"enterprise": {Override: &catalog.RateLimit{Requests: 10_000, Period: time.Minute, Burst: 500}},
		},
	}
	for _, procedure := range []string{"/example.orders.v1.OrdersService/ImportOrders", "/example.licensing.v1.LicensingService/ListRequirements"} {
		m, _ := cat.Method(procedure)
		for _, tier := range []string{"free", "pro", "enterprise"} {
			call, messages := policy.Limits(m, tier)
			fmt.Printf("%s %s: calls %v; messages %v\n", m.Descriptor.Name(), tier, call, messages)
		}
	}
	// Output:
	// ImportOrders free: calls 100 per 1m0s, burst 20; messages 1000 per 1s, burst 100
	// ImportOrders pro: calls 200 per 1m0s, burst 40; messages 2000 per 1s, burst 200
	// ImportOrders enterprise: calls 10000 per 1m0s, burst 500; messages 1000 per 1s, burst 100
	// ListRequirements free: calls 10 per 1s, burst 5; messages unlimited
	// ListRequirements pro: calls 20 per 1s, burst 10; messages unlimited
	// ListRequirements enterprise: calls 10000 per 1m0s, burst 500; messages unlimited
}
