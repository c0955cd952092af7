package revocation

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Feed serves an issuer's revocations to gateways that follow it
// ([WithFeed]): the revocation feed, an HTTP endpoint
//
//	GET /revocations?since=N&epoch=E&wait=5s
//
// answering the revocations numbered after N, oldest first, as
//
//	{"issuer": "https://auth.example.com", "epoch": "Kx3...", "next": 42, "more": false,
//	 "revocations": [{"jti": "...", "exp": 1767225600}, {"client_id": "billing", "before": 1767222000, "exp": 1767308700}]}
//
// A follower starts with since=0 and then sends the next and epoch of the
// last answer. When nothing is newer, the answer waits up to wait (at
// most [MaxFeedWait]) for news, so a revocation reaches followers within
// milliseconds and an idle follower asks about twice per wait. An answer
// holds at most a page of revocations; more says that another follows at
// once. A feed numbers its revocations from 1 each time it is made: an
// epoch other than its own (a feed that restarted) starts over from 0,
// and the follower reads everything again. Expired revocations leave the
// feed by themselves.
//
// Feed is an [http.Handler]; it is safe for concurrent use.
type Feed struct {
	issuer   string
	epoch    string
	now      func() time.Time
	pageSize int

	mu        sync.Mutex
	entries   []fed             // by seq
	seen      map[Wire]struct{} // what entries hold, to ignore repeats
	last      uint64            // seq of the latest entry
	wake      chan struct{}     // closed and replaced by each addition
	compacted time.Time
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

// fed is a revocation of the feed, without its issuer.
type fed struct {
	seq uint64
	w   Wire
}

// FeedPath is where an issuer serves its feed, after its own path, and
// FeedMetadata the member of its metadata that names the feed's URL.
const (
	FeedPath     = "/revocations"
	FeedMetadata = "revocation_feed_endpoint"
)

// DefaultFeedPageSize is the most revocations an answer holds.
const DefaultFeedPageSize = 10_000

// A FeedOption configures a [Feed].
type FeedOption interface {
	applyFeed(*Feed)
}

type feedOptionFunc func(*Feed)

func (f feedOptionFunc) applyFeed(feed *Feed) { f(feed) }

// WithFeedClock sets the clock that expiry is judged by (default
// time.Now).
func WithFeedClock(now func() time.Time) FeedOption {
	return feedOptionFunc(func(f *Feed) { f.now = now })
}

// WithFeedPageSize sets the most revocations an answer holds (default
// [DefaultFeedPageSize]); it must be positive.
func WithFeedPageSize(n int) FeedOption {
	return feedOptionFunc(func(f *Feed) { f.pageSize = n })
}

// NewFeed returns an empty feed of issuer's revocations.
func NewFeed(issuer string, opts ...FeedOption) (*Feed, error) {
	var epoch [12]byte
	rand.Read(epoch[:]) // never fails
	f := &Feed{
		issuer:   issuer,
		epoch:    base64.RawURLEncoding.EncodeToString(epoch[:]),
		now:      time.Now,
		pageSize: DefaultFeedPageSize,
		seen:     make(map[Wire]struct{}),
		wake:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o.applyFeed(f)
		}
	}
	switch {
	case issuer == "":
		return nil, errors.New("revocation: feed without an issuer")
	case f.now == nil:
		return nil, errors.New("revocation: WithFeedClock(nil)")
	case f.pageSize <= 0:
		return nil, fmt.Errorf("revocation: WithFeedPageSize(%d): the size must be positive", f.pageSize)
	}
	f.compacted = f.now()
	return f, nil
}

// Add appends revocations of the feed's issuer, ignoring those it holds
// already and those expired, and wakes the followers waiting. It fails
// naming the invalid ones and those of another issuer, adding the others.
func (f *Feed) Add(rs ...Revocation) error {
	var errs []error
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	added := false
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Issuer != f.issuer {
			errs = append(errs, fmt.Errorf("revocation: %s is of issuer %q, not the feed's", r, r.Issuer))
			continue
		}
		w := r.ToWire()
		w.Issuer = ""
		if _, dup := f.seen[w]; dup || w.Expires <= now.Unix() {
			continue
		}
		f.last++
		f.entries = append(f.entries, fed{seq: f.last, w: w})
		f.seen[w] = struct{}{}
		added = true
	}
	if now.Sub(f.compacted) >= time.Minute {
		f.compact(now)
	}
	if added {
		close(f.wake)
		f.wake = make(chan struct{})
	}
	return errors.Join(errs...)
}

// compact drops expired revocations. Their numbers are not reused.
func (f *Feed) compact(now time.Time) {
	kept := f.entries[:0]
	for _, e := range f.entries {
		if e.w.Expires > now.Unix() {
			kept = append(kept, e)
		} else {
			delete(f.seen, e.w)
		}
	}
	clear(f.entries[len(kept):])
	f.entries = kept
	f.compacted = now
}

// Close answers the requests waiting for news at once, and makes later
// ones answer without waiting, so that a server shutting down is not held
// up by its followers.
func (f *Feed) Close() { f.closeOnce.Do(func() { close(f.closed) }) }

// Len returns the number of revocations the feed holds, some perhaps
// expired since the last compaction.
func (f *Feed) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

// Page is an answer of the feed.
type Page struct {
	Issuer      string `json:"issuer"`
	Epoch       string `json:"epoch"`
	Next        uint64 `json:"next"`
	More        bool   `json:"more"`
	Revocations []Wire `json:"revocations"`
}

// page returns the revocations after since, and the channel that the next
// addition closes.
func (f *Feed) page(since uint64, now time.Time) (*Page, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := &Page{Issuer: f.issuer, Epoch: f.epoch, Next: since, Revocations: []Wire{}}
	i := sort.Search(len(f.entries), func(i int) bool { return f.entries[i].seq > since })
	for ; i < len(f.entries); i++ {
		if len(p.Revocations) == f.pageSize {
			p.More = true
			break
		}
		e := f.entries[i]
		p.Next = e.seq
		if e.w.Expires > now.Unix() {
			p.Revocations = append(p.Revocations, e.w)
		}
	}
	if !p.More {
		p.Next = f.last
	}
	return p, f.wake
}

// ServeHTTP answers GET requests of the feed; see [Feed].
func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		feedError(w, http.StatusMethodNotAllowed, "the revocation feed answers GET")
		return
	}
	q := r.URL.Query()
	var since uint64
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseUint(s, 10, 64); err != nil {
			feedError(w, http.StatusBadRequest, "since is not a number of revocations")
			return
		}
	}
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		var err error
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			feedError(w, http.StatusBadRequest, `wait is not a duration such as "5s"`)
			return
		}
		wait = min(wait, MaxFeedWait)
	}
	f.mu.Lock()
	if q.Get("epoch") != f.epoch || since > f.last {
		since = 0 // a follower of another epoch, or confused: everything
	}
	f.mu.Unlock()

	p, wake := f.page(since, f.now())
	if len(p.Revocations) == 0 && !p.More && p.Next == since && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-wake:
			p, _ = f.page(since, f.now())
		case <-t.C:
		case <-r.Context().Done():
		case <-f.closed:
		}
		t.Stop()
	}
	body, err := json.Marshal(p)
	if err != nil {
		feedError(w, http.StatusInternalServerError, "could not encode the revocations")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(body)
}

// feedError answers a request the feed cannot serve, as OAuth endpoints
// do: {"error", "error_description"}.
func feedError(w http.ResponseWriter, status int, description string) {
	code := "invalid_request"
	if status >= 500 {
		code = "server_error"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
