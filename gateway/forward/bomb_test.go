package forward_test

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
)

// TestGzipBomb sends a 2 MB gzip stream that inflates to 2 GiB, in each
// protocol: the gateway stops inflating at the message limit and refuses
// the call with ResourceExhausted. Connect's own limit inflates the whole
// stream to report its size, for seconds of CPU.
//
// The bomb must cost no more CPU than a stream of the same compressed size
// that inflates just past the limit, which the gateway must inflate as far
// as the limit too. It does not run in parallel: it measures the
// process's CPU time, with the garbage collector paused.
func TestGzipBomb(t *testing.T) {
	be := startBackend(t)
	const limit = forward.DefaultMaxMessageBytes
	gw, _ := startObservedGateway(t, be.url, forward.WithMaxMessageBytes(limit))
	bomb := gzipBomb()
	near := nearBomb(t, len(bomb), limit)
	send := func(wr wire, stream []byte) (rpcStatus, time.Duration) {
		t.Helper()
		body := stream
		procedure := "/example.licensing.v1.LicensingService/ListJurisdictions"
		if wr.enveloped {
			body = envelope(1, stream) // compressed
		}
		if wr == wireConnectStream {
			procedure = "/example.orders.v1.OrdersService/ImportOrders"
		}
		req := newRawRequest(t, gw, procedure, wr, bytes.NewReader(body))
		req.Header.Set(wr.compression, "gzip")
		// The collector's work, which depends on what ran before, would
		// blur the figure.
		runtime.GC()
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		start := cpuTime()
		res, err := h2cClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readStatus(t, wr, res)
		return got, cpuTime() - start
	}
	for _, wr := range []wire{wireConnect, wireConnectStream, wireGRPC, wireGRPCWeb} {
		t.Run(wr.name, func(t *testing.T) {
			const want = "decompressed message is larger than the limit of 4194304 bytes"
			got, nearCPU := send(wr, near)
			wantStatus(t, wr.name+" near", got, connect.CodeResourceExhausted, want)
			got, bombCPU := send(wr, bomb)
			wantStatus(t, wr.name, got, connect.CodeResourceExhausted, want)
			t.Logf("CPU: the bomb %v, a stream inflating just past the limit %v", bombCPU, nearCPU)
			if bombCPU > 2*nearCPU+100*time.Millisecond {
				t.Errorf("%s: the bomb cost %v of CPU, a stream inflating just past the limit %v", wr.name, bombCPU, nearCPU)
			}
		})
	}
}

// nearBomb returns a gzip stream of about size bytes that inflates to a
// little more than limit: random bytes, which do not compress, then zeros.
func nearBomb(t *testing.T, size, limit int) []byte {
	t.Helper()
	data := make([]byte, limit+64<<10)
	random := rand.NewChaCha8([32]byte{})
	_, _ = random.Read(data[:size])
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if out.Len() > limit {
		t.Fatalf("the stream is %d bytes, over the limit", out.Len())
	}
	return out.Bytes()
}
