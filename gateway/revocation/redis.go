package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps revocations in Redis, shared by every gateway replica: in a
// sorted set whose scores are the revocations' expiries, so that each
// lives as long as the token it revokes, and pushed to the replicas over
// pub/sub as they are added. The key expires with the last revocation in
// it. A replica subscribes first and then reads the whole set, on start
// and after every reconnection, so that none published meanwhile is
// missed. Issuers publish with [Redis.Publish]; gateway replicas follow
// with [WithRedis].
type Redis struct {
	client  redis.UniversalClient
	key     string // the sorted set: member the JSON of a revocation, score its expiry in ms
	channel string // where additions are published
	prefix  string
	timeout time.Duration
}

// DefaultRedisPrefix starts the key and the channel of revocations.
const DefaultRedisPrefix = "portcullis:revocations:"

// A RedisOption configures a [Redis].
type RedisOption interface {
	applyRedis(*Redis)
}

type redisOptionFunc func(*Redis)

func (f redisOptionFunc) applyRedis(r *Redis) { f(r) }

// WithPrefix sets the prefix of the key and the channel (default
// [DefaultRedisPrefix]); issuers and gateways must use the same. It must
// not be empty.
func WithPrefix(prefix string) RedisOption {
	return redisOptionFunc(func(r *Redis) { r.prefix = prefix })
}

// WithTimeout bounds each round trip to Redis (default 2s); it must be
// positive.
func WithTimeout(d time.Duration) RedisOption {
	return redisOptionFunc(func(r *Redis) { r.timeout = d })
}

// NewRedis returns revocations kept in Redis through client, such as a
// *redis.Client or *redis.ClusterClient.
func NewRedis(client redis.UniversalClient, opts ...RedisOption) (*Redis, error) {
	r := &Redis{client: client, prefix: DefaultRedisPrefix, timeout: 2 * time.Second}
	for _, o := range opts {
		if o != nil {
			o.applyRedis(r)
		}
	}
	var problems []error
	if client == nil {
		problems = append(problems, errors.New("nil Redis client"))
	}
	if r.prefix == "" {
		problems = append(problems, errors.New("empty key prefix"))
	}
	if r.timeout <= 0 {
		problems = append(problems, fmt.Errorf("timeout %s is not positive", r.timeout))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("revocation: invalid Redis options: %w", errors.Join(problems...))
	}
	r.key, r.channel = r.prefix+"set", r.prefix+"events"
	return r, nil
}

// name names the Redis for logs and errors.
func (r *Redis) name() string {
	addr := "cluster"
	if c, ok := r.client.(*redis.Client); ok {
		addr = c.Options().Addr
	}
	return addr + " " + r.key
}

// publishScript adds revocations to the sorted set KEYS[1] and publishes
// the new ones on the channel ARGV[1]; ARGV then holds pairs of expiry (ms
// since 1970) and member. Expired revocations are dropped on the Redis
// server's clock, and the key expires with the latest revocation.
var publishScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = 0
for i = 2, #ARGV, 2 do
  local exp = tonumber(ARGV[i])
  if exp > now and redis.call('ZADD', KEYS[1], 'NX', exp, ARGV[i + 1]) == 1 then
    redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
    added = added + 1
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return added
`)

// publishBatch is the most revocations one script call adds.
const publishBatch = 500

// Publish stores revocations and pushes them to every replica following
// r. Revocations already stored or expired are not pushed again, so
// publishing is idempotent. It fails naming invalid revocations, and
// when Redis does.
func (r *Redis) Publish(ctx context.Context, rs ...Revocation) error {
	args := make([]any, 0, 1+2*min(len(rs), publishBatch))
	for _, rv := range rs {
		if err := rv.Validate(); err != nil {
			return err
		}
	}
	for start := 0; start < len(rs); start += publishBatch {
		args = append(args[:0], r.channel)
		for _, rv := range rs[start:min(start+publishBatch, len(rs))] {
			args = append(args, ceilUnix(rv.Expires)*1000, rv.Marshal())
		}
		ctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := publishScript.Run(ctx, r.client, []string{r.key}, args...).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("revocation: redis %s: %w", r.name(), err)
		}
	}
	return nil
}

// followRedis follows the revocations in Redis until the set closes,
// reconnecting and reading everything again after each failure.
func (s *Set) followRedis(src *source, r *Redis) {
	var b backoff
	for s.ctx.Err() == nil {
		err := s.redisSession(src, r, &b)
		if s.ctx.Err() != nil {
			return
		}
		s.desync(src)
		s.failed(src, err)
		if !s.wait(&b) {
			return
		}
	}
}

// redisSession subscribes, reads the whole set, then applies what is
// published until the connection fails. It pings Redis four times per
// staleness, and gives the connection up when two pings go unanswered.
func (s *Set) redisSession(src *source, r *Redis, b *backoff) error {
	ps := r.client.Subscribe(s.ctx)
	defer ps.Close()
	stop := context.AfterFunc(s.ctx, func() { ps.Close() })
	defer stop()
	ctx, cancel := context.WithTimeout(s.ctx, r.timeout)
	err := ps.Subscribe(ctx, r.channel)
	cancel()
	if err != nil {
		return err
	}
	msg, err := ps.ReceiveTimeout(s.ctx, r.timeout)
	if err != nil {
		return err
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return fmt.Errorf("unexpected %T before the subscription", msg)
	}
	if err := s.resync(src, r); err != nil {
		return err
	}
	b.reset()
	heartbeat := s.cfg.staleness / 4
	lastReceived := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, heartbeat)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if time.Since(lastReceived) > 2*heartbeat+r.timeout {
				return errors.New("no answer to ping")
			}
			ctx, cancel := context.WithTimeout(s.ctx, r.timeout)
			err := ps.Ping(ctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		lastReceived = time.Now()
		switch m := msg.(type) {
		case *redis.Message:
			if rv, err := Unmarshal([]byte(m.Payload), ""); err == nil {
				s.add(rv)
			} else {
				s.cfg.logger.Warn("revocations: ignored a revocation published in Redis", slog.String("source", src.String()), slog.Any("error", err))
			}
			s.heard(src)
		case *redis.Pong:
			s.heard(src)
		case *redis.Subscription:
			// The client reconnected and subscribed again by itself:
			// what was published meanwhile is missed; read it all.
			s.desync(src)
			if err := s.resync(src, r); err != nil {
				return err
			}
		}
	}
}

// resync reads every revocation in Redis.
func (s *Set) resync(src *source, r *Redis) error {
	var cursor uint64
	bad := 0
	for {
		ctx, cancel := context.WithTimeout(s.ctx, r.timeout)
		members, next, err := r.client.ZScan(ctx, r.key, cursor, "", 1000).Result()
		cancel()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(members); i += 2 {
			if rv, err := Unmarshal([]byte(members[i]), ""); err == nil {
				s.add(rv)
			} else {
				bad++
			}
		}
		s.heard(src)
		if next == 0 {
			break
		}
		cursor = next
	}
	if bad > 0 {
		s.cfg.logger.Warn("revocations: ignored invalid revocations in Redis", slog.String("source", src.String()), slog.Int("count", bad))
	}
	s.synced(src)
	return nil
}
