// Package revocation ends tokens before they expire: one token, by its
// jti, or every token of a client issued before a time. A gateway replica
// holds the revocations in a [Set], in memory, and checks every token
// against it locally, cached verifications included ([Set.Revoked], a
// hash and a map lookup, without allocating); the set follows its
// sources in the background so that a revocation reaches every replica
// within milliseconds:
//
//   - with Redis ([WithRedis]), revocations live in a sorted set whose
//     scores are their expiries, and are pushed over pub/sub; a replica
//     reads the whole set when it starts and after every reconnection;
//   - without it ([WithFeed], [WithDiscoveredFeed]), the replica follows
//     each issuer's revocation feed ([Feed]), an HTTP endpoint answered
//     by long polling.
//
// Wiring it into a verifier:
//
//	set, err := revocation.New(ctx,
//		revocation.WithDiscoveredFeed("https://auth.example.com"),
//		revocation.WithStaleness(10*time.Second))
//	if err != nil {
//		return err
//	}
//	defer set.Close()
//	v, err := token.NewVerifier(ctx, issuers, token.WithRevocations(set))
//	// Report not-ready until the revocations are loaded.
//	if err := set.Ready(); err != nil { ... }
//	// Report staleness: a source unheard for longer than the staleness.
//	if err := set.Err(); err != nil { ... }
//
// An issuer serves its feed with a [Feed] and, where replicas share
// Redis, publishes with [Redis.Publish] too.
//
// Revocations expire when the tokens they revoke would have, and the set
// drops them by itself, so memory follows the revocations of one maximum
// token lifetime: a revoked token costs one map slot (a 64-bit keyed hash
// and its expiry, about 40 bytes with the map's overhead, whatever the
// length of its jti), a revoked client a map entry of its strings.
//
// # Why not a library
//
// Go has bloom filters and caches with expiry, but a bloom filter refuses
// valid tokens at a rate that grows with its content, and the caches
// evict under pressure: an evicted revocation lets its token through.
// The set here never forgets a revocation before it expires, and its
// only error is refusing, with a probability of about n/2^64 for n
// revocations, a token whose hash matches a revoked one.
package revocation
