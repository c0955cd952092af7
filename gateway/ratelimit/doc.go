// Package ratelimit limits how often each client may call each method, as
// the method declares in its (gateway.v1.access) option, and how fast a
// client stream may send its messages; and its [Guard] refuses, before any
// signature check, the addresses that keep failing authentication.
//
// # Usage
//
// The [Interceptor] reads the declared limits from the catalog, adjusted by
// the operator's [Policy], and keeps its count in a [Store]: [Memory] on one
// gateway, [Redis] when many gateway replicas share one budget. It reads
// the caller from the context, so it goes after the interceptor that
// authenticates ([token.NewContext]); connect runs interceptors in the order
// given:
//
//	cat, err := catalog.New(protoregistry.GlobalFiles)
//	if err != nil { ... }
//	store, err := ratelimit.NewMemory() // or ratelimit.NewRedis(redisClient)
//	if err != nil { ... }
//	defer store.Close()
//	limiter, err := ratelimit.NewInterceptor(cat, store,
//		ratelimit.WithPolicy(ratelimit.Policy{
//			Default: &catalog.RateLimit{Requests: 100, Period: time.Minute, Burst: 20},
//			Tiers:   map[string]ratelimit.Tier{"pro": {Multiplier: 10}},
//		}),
//		ratelimit.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")),
//	)
//	if err != nil { ... }
//	handler := connect.WithInterceptors(authenticate, authorize, limiter)
//
// A gateway decides earlier, in request gates, on the headers alone: a
// call refused there never has its body read. [Interceptor.Gate] goes
// after the gate that authenticates, and the same interceptor stays in the
// chain, where it writes the decision's fields and limits stream messages
// without deciding again. A [Guard] wraps the authenticating gate:
//
//	guard, err := ratelimit.NewGuard(ratelimit.WithTrustedProxies(proxies...))
//	if err != nil { ... }
//	defer guard.Close()
//	options := []connect.HandlerOption{ // gates run in the order given
//		connect.WithRequestGate(guard.Wrap(authorizer.Gate())),
//		connect.WithRequestGate(limiter.Gate()),
//		connect.WithInterceptors(limiter),
//	}
//
// # Who is counted
//
// An authenticated call counts against its client id and method, under
// the key "<procedure>|id:<client id>"; a call without a principal counts
// against its client's address, "<procedure>|ip:<address>", IPv6 addresses
// by their /64 ([WithIPv6Prefix]). The address is the direct peer's, unless
// the peer is a trusted proxy ([WithTrustedProxies]): then it is the
// rightmost address of X-Forwarded-For that is not itself a trusted
// proxy's. X-Forwarded-For from any other peer is ignored.
//
// # Algorithm
//
// Decisions follow the generic cell rate algorithm (GCRA): a key's whole
// state is one time, the theoretical arrival time of its next request, and
// a limit of Requests per Period with Burst lets Burst requests through at
// once, then one every Period/Requests. The decisions of [Memory] take the
// time as an argument ([Memory.AllowAt]) or from an injected clock
// ([WithClock]); those of [Redis] use the Redis server's clock, in one
// script run, so that gateway clocks do not matter.
//
// # Answers
//
// A call over its limit fails with ResourceExhausted (HTTP 429), with a
// message such as "rate limit exceeded for /pkg.Service/Method: retry in
// 1.25s", and the details google.rpc.ErrorInfo (reason RATE_LIMITED,
// domain "portcullis.dev", metadata procedure and policy),
// google.rpc.RetryInfo and google.rpc.QuotaFailure (subject
// "client:<client id>", or "address" for an anonymous caller); in gRPC and
// gRPC-Web, the trailer grpc-retry-pushback-ms too, which gRPC clients
// that retry wait for. Every limited call, allowed or not, carries the
// fields of draft-ietf-httpapi-ratelimit-headers in its response headers,
// which gRPC clients read as header metadata (a refusal in the gate: as
// trailer metadata):
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=0;t=2
//	Retry-After: 2
//
// The policy states the declared limit: q requests per window w, in
// seconds. r is how many more requests would be admitted now. t is, while
// r is positive, the seconds until the whole burst is back, and at r=0 the
// seconds until the next request is admitted. Retry-After, on refusals
// only, is that same wait rounded up to the second.
//
// # Streams
//
// Opening a stream counts as one call. A method with a
// stream_message_limit also limits the messages each of its client
// streams sends, per stream: the first message over the limit fails to be
// received with ResourceExhausted, and the stream ends with that error,
// the fields in its trailers. RateLimit-Policy then lists the "messages"
// policy next to the call's.
//
// # Failed authentication
//
// Verifying a forged token costs a signature check, tens of microseconds
// of CPU, and an attacker can send them as fast as the network carries
// them. The [Guard] counts, per client address (told as above), the calls
// its gate refuses with Unauthenticated: past the failure budget, 20 per
// 10s by default, it refuses the address's calls for a cool-down, 30s by
// default, with ResourceExhausted, Retry-After and the details ErrorInfo
// (reason AUTH_FAILURES) and RetryInfo, before the gate and its check run.
//
// # Redis failures
//
// A decision Redis fails to take within its timeout follows the failure
// policy, [FailOpen] or [FailClosed], for itself only. After
// [WithFailureThreshold] failures in a row (those under way together
// counting as one, as when one slow reply holds up every decision behind
// it), the breaker opens: decisions then follow the policy at once, and
// one per probe interval asks Redis, the first to succeed closing it.
package ratelimit
