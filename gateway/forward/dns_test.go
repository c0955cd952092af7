package forward_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/internal/freeport"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a DNS server on 127.0.0.1 (UDP) that answers A queries for
// one name with addresses a test changes, AAAA queries with none, and
// every other name with NXDOMAIN.
type dnsServer struct {
	name  dnsmessage.Name
	conn  net.PacketConn
	mu    sync.Mutex
	addrs []netip.Addr
}

func startDNS(t *testing.T, name string, addrs ...netip.Addr) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{name: dnsmessage.MustNewName(name + "."), conn: conn, addrs: addrs}
	t.Cleanup(func() { _ = conn.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) set(addrs ...netip.Addr) {
	s.mu.Lock()
	s.addrs = addrs
	s.mu.Unlock()
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.EnableCompression()
		_ = b.StartQuestions()
		_ = b.Question(q)
		_ = b.StartAnswers()
		if !strings.EqualFold(q.Name.String(), s.name.String()) {
			b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
			_ = b.StartQuestions()
			_ = b.Question(q)
		} else if q.Type == dnsmessage.TypeA {
			s.mu.Lock()
			for _, a := range s.addrs {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: a.As4()})
			}
			s.mu.Unlock()
		}
		msg, err := b.Finish()
		if err != nil {
			continue
		}
		_, _ = s.conn.WriteTo(msg, from)
	}
}

// resolver is a net.Resolver that asks only s.
func (s *dnsServer) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// TestDNSEndpoints resolves a name whose A records change, as a
// Kubernetes headless service's do when pods come and go: the replicas
// listed get calls, one added gets calls after the next refresh, one
// removed gets none after it.
func TestDNSEndpoints(t *testing.T) {
	t.Parallel()
	// Three replicas on the same port of three loopback addresses.
	first := newReplica(t, freeport.Addr(t))
	_, port, _ := net.SplitHostPort(first.addr)
	second := newReplica(t, net.JoinHostPort("127.0.0.2", port))
	third := newReplica(t, net.JoinHostPort("127.0.0.3", port))
	rs := []*replica{first, second, third}
	ip := func(r *replica) netip.Addr { return netip.MustParseAddrPort(r.addr).Addr() }

	const name = "orders.portcullis.test"
	dns := startDNS(t, name, ip(first), ip(second))
	be, err := forward.NewBackendEndpoints(nil, forward.WithBackendLogger(nil),
		forward.WithDNS(net.JoinHostPort(name, port), "http", 50*time.Millisecond, dns.resolver()))
	if err != nil {
		t.Fatal(err)
	}
	client := ordersClient(balancedGateway(t, be), protocols[2])
	callAll := func(n int) []int64 {
		t.Helper()
		before := counts(rs)
		for range n {
			if _, err := getOrder(t.Context(), client); err != nil {
				t.Fatal(err)
			}
		}
		after := counts(rs)
		for i := range after {
			after[i] -= before[i]
		}
		return after
	}
	endpoints := func() string {
		var urls []string
		for _, s := range be.Endpoints() {
			urls = append(urls, s.URL)
		}
		return strings.Join(urls, " ")
	}

	if got := callAll(30); got[0] != 15 || got[1] != 15 || got[2] != 0 {
		t.Errorf("calls per replica %v, want [15 15 0] (endpoints %s)", got, endpoints())
	}
	dns.set(ip(second), ip(third))
	changed := time.Now()
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(endpoints(), "127.0.0.3") && !strings.Contains(endpoints(), "127.0.0.1")
	})
	t.Logf("endpoints %s after %v", endpoints(), time.Since(changed).Round(time.Millisecond))
	if got := callAll(30); got[0] != 0 || got[1] != 15 || got[2] != 15 {
		t.Errorf("calls per replica %v, want [0 15 15]", got)
	}
	// A lookup that fails keeps the endpoints found before.
	dns.set()
	time.Sleep(200 * time.Millisecond)
	if got := callAll(10); got[1]+got[2] != 10 {
		t.Errorf("calls per replica %v with no address listed", got)
	}
	if !strings.HasPrefix(be.URL(), "dns:///"+name) {
		t.Errorf("URL() = %q", be.URL())
	}
}
