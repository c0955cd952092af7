package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
)

// maxPageBytes bounds an answer of a feed: a page of the largest
// revocations.
const maxPageBytes = 16 << 20

// followFeed follows a feed until the set closes: it reads it in full,
// then asks for news, waiting up to half the staleness for each answer.
func (s *Set) followFeed(src *source, f feedSource) {
	var b backoff
	feedURL := f.url
	for feedURL == "" {
		u, found, err := s.discoverFeed(f.issuer)
		switch {
		case err != nil:
			s.failed(src, err)
			if !s.wait(&b) {
				return
			}
			continue
		case !found:
			// Nothing to follow: the set is as complete as it can be.
			s.cfg.logger.Info("revocations: the issuer's metadata names no revocation feed", slog.String("issuer", f.issuer))
			s.synced(src)
			src.contact.Store(maxTime)
			return
		}
		feedURL = u
		src.setName("feed " + u)
		b.reset()
	}
	var (
		since uint64
		epoch string
	)
	for s.ctx.Err() == nil {
		wait := time.Duration(0)
		if src.synced.Load() {
			wait = s.cfg.feedWait()
		}
		p, err := s.getPage(feedURL, since, epoch, wait)
		if err == nil && p.Issuer != f.issuer {
			err = fmt.Errorf("the feed is of issuer %q", p.Issuer)
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.failed(src, err)
			if !s.wait(&b) {
				return
			}
			continue
		}
		b.reset()
		if p.Epoch != epoch {
			if epoch != "" {
				// The feed restarted: read it again from the start.
				s.desync(src)
				s.cfg.logger.Info("revocations: the feed restarted; reading it again", slog.String("source", src.String()))
			}
			epoch = p.Epoch
		}
		for _, w := range p.Revocations {
			if w.Issuer != "" && w.Issuer != f.issuer {
				continue // a feed revokes the tokens of its own issuer only
			}
			if r, err := w.Revocation(f.issuer); err == nil {
				s.add(r)
			}
		}
		since = p.Next
		if p.More {
			s.heard(src)
		} else {
			s.synced(src)
		}
	}
}

// maxTime is the contact time of a source that cannot go stale.
const maxTime = 1<<63 - 1

// getPage asks the feed for the revocations after since.
func (s *Set) getPage(feedURL string, since uint64, epoch string, wait time.Duration) (*Page, error) {
	u, err := url.Parse(feedURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("since", strconv.FormatUint(since, 10))
	if epoch != "" {
		q.Set("epoch", epoch)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	u.RawQuery = q.Encode()
	// The answer may take the wait; past it and a margin, the feed is
	// unreachable.
	ctx, cancel := context.WithTimeout(s.ctx, wait+max(s.cfg.staleness/2, 2*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.cfg.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes+1))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", feedURL, res.Status)
	}
	if len(body) > maxPageBytes {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", feedURL, maxPageBytes)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("%s: answer is %q, not JSON", feedURL, mt)
	}
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", feedURL, err)
	}
	if p.Epoch == "" {
		return nil, fmt.Errorf("%s: answer has no epoch", feedURL)
	}
	return &p, nil
}

// discoverFeed reads the issuer's metadata and returns the URL of its
// feed, found false when it names none.
func (s *Set) discoverFeed(issuer string) (feedURL string, found bool, _ error) {
	var problems []error
	for _, u := range token.MetadataURLs(issuer) {
		feedURL, found, err := s.readMetadata(issuer, u)
		if err == nil {
			return feedURL, found, nil
		}
		problems = append(problems, err)
	}
	return "", false, fmt.Errorf("discovery: %w", errors.Join(problems...))
}

func (s *Set) readMetadata(issuer, metadataURL string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metadataURL, nil)
	if err != nil {
		return "", false, err
	}
	res, err := s.cfg.client.Do(req)
	if err != nil {
		return "", false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("%s: %s", metadataURL, res.Status)
	}
	var md map[string]any
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&md); err != nil {
		return "", false, fmt.Errorf("%s: %w", metadataURL, err)
	}
	// RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
	if md["issuer"] != issuer {
		return "", false, fmt.Errorf("%s: metadata names issuer %v", metadataURL, md["issuer"])
	}
	raw, ok := md[FeedMetadata]
	if !ok {
		return "", false, nil
	}
	feed, _ := raw.(string)
	u, err := url.Parse(feed)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("%s: %s is not an http(s) URL", metadataURL, FeedMetadata)
	}
	// A feed must come at least as safely as the metadata that names it.
	if strings.HasPrefix(issuer, "https:") && u.Scheme != "https" {
		return "", false, fmt.Errorf("%s: %s is not https", metadataURL, FeedMetadata)
	}
	return feed, true, nil
}
