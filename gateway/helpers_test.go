package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
)

// decodeHeader returns the JOSE header of a compact JWS.
func decodeHeader(t *testing.T, tok string) map[string]string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	data, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range h {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// syncWriter serializes writes from concurrent handlers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
