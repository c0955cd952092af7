package forward

import (
	"compress/gzip"
	"fmt"
	"io"

	"connectrpc.com/connect"
)

// boundedGzip registers the gzip compression of connect's handlers with a
// decompressor that stops at limit bytes. connect bounds the size of an
// inflated message, but to report it inflates the whole message first: a
// gzip stream of 2 MB can inflate to 2 GiB, and cost a second of CPU, for
// a call that is refused anyway. This decompressor fails the read past
// the limit, so the refusal costs what inflating the limit costs.
func boundedGzip(limit int64) connect.HandlerOption {
	return connect.WithCompression("gzip",
		func() connect.Decompressor { return &limitedGzipReader{limit: limit} },
		func() connect.Compressor { return gzip.NewWriter(io.Discard) },
	)
}

// limitedGzipReader is a gzip.Reader that yields at most limit bytes and
// fails, with ResourceExhausted, when the stream holds more.
type limitedGzipReader struct {
	gzip.Reader
	limit int64
	left  int64
	probe [1]byte
}

func (z *limitedGzipReader) Reset(r io.Reader) error {
	z.left = z.limit
	return z.Reader.Reset(r)
}

func (z *limitedGzipReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		// At the limit: the stream must end here.
		if n, err := z.Reader.Read(z.probe[:]); n == 0 {
			return 0, err
		}
		// connect reports this error as it is.
		return 0, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("decompressed message is larger than the limit of %d bytes", z.limit))
	}
	if int64(len(p)) > z.left {
		p = p[:z.left]
	}
	n, err := z.Reader.Read(p)
	z.left -= int64(n)
	return n, err
}
