package forward_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// bombInflated is what the gzip bomb inflates to: 2 GiB, from about
// 2 MB, under the default message limit.
const bombInflated = 2 << 30

// gzipBomb returns a gzip stream of bombInflated zero bytes. Compressing
// 2 GiB would take seconds; once the compressor's window holds only
// zeros, every further MiB of zeros compresses to the same bytes, so the
// stream is built by repeating them.
var gzipBomb = sync.OnceValue(func() []byte {
	const chunk = 1 << 20
	zeros := make([]byte, chunk)
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, flate.BestCompression)
	if err != nil {
		panic(err)
	}
	var last []byte
	for range 3 {
		start := deflated.Len()
		_, _ = fw.Write(zeros)
		_ = fw.Flush()
		last = append(last[:0], deflated.Bytes()[start:]...)
	}
	for range bombInflated/chunk - 3 {
		deflated.Write(last)
	}
	_ = fw.Close()
	crc := crc32.NewIEEE()
	for range bombInflated / chunk {
		_, _ = crc.Write(zeros)
	}
	out := bytes.NewBuffer([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // gzip header
	out.Write(deflated.Bytes())
	_ = binary.Write(out, binary.LittleEndian, crc.Sum32())
	_ = binary.Write(out, binary.LittleEndian, uint32(bombInflated)) // size mod 2^32
	return out.Bytes()
})

// BenchmarkGzipBomb sends the gzip bomb to a unary method, as Connect
// (gzip Content-Encoding) and as gRPC (one compressed message), and
// reports the CPU the process spent on each refused request: client,
// gateway and backend share the process, and only the gateway has work
// to do. Run with -benchtime=5x; compare builds in the same run.
func BenchmarkGzipBomb(b *testing.B) {
	backendURL := startBackend(b).url
	gw := startGateway(b, backendURL, nil)
	bomb := gzipBomb()
	grpcBody := make([]byte, 5, 5+len(bomb))
	grpcBody[0] = 1 // compressed
	binary.BigEndian.PutUint32(grpcBody[1:], uint32(len(bomb)))
	grpcBody = append(grpcBody, bomb...)
	for _, tt := range []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"connect", http.Header{"Content-Type": {"application/proto"}, "Content-Encoding": {"gzip"}}, bomb},
		{"grpc", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Encoding": {"gzip"}, "Te": {"trailers"}}, grpcBody},
	} {
		b.Run(tt.name, func(b *testing.B) {
			client := h2cClient()
			var cpu time.Duration
			for b.Loop() {
				req, err := http.NewRequestWithContext(b.Context(), http.MethodPost,
					gw+"/example.licensing.v1.LicensingService/ListJurisdictions", bytes.NewReader(tt.body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header = tt.header.Clone()
				start := cpuTime()
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				cpu += cpuTime() - start
				if status := res.Trailer.Get("Grpc-Status") + res.Header.Get("Grpc-Status"); res.StatusCode == http.StatusOK && (status == "" || status == "0") {
					b.Fatalf("the bomb was accepted")
				}
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
