package coalesce_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/gateway/coalesce"
)

// An HTTP/2 client on h2c whose connections are coalesced: each POST's
// headers go out in the same write as its body.
func ExampleClient() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &h2c, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s over HTTP/%d", body, r.ProtoMajor)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	var dialer net.Dialer
	client := &http.Client{Transport: &http.Transport{
		Protocols: &h2c,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return coalesce.Client(c), nil
		},
	}}
	res, err := client.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body)
	fmt.Println(string(answer))
	// Output: hello over HTTP/2
}
