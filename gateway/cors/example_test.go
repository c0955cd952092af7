package cors_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/portcullis/portcullis/gateway/cors"
)

// A token endpoint, or any plain handler, behind CORS: the browser's
// preflight is answered before the client authenticates.
func ExampleCORS_Wrap() {
	c, err := cors.New(cors.Policy{AllowedOrigins: []string{"https://app.example.com"}, MaxAge: time.Hour}, nil)
	if err != nil {
		log.Fatal(err)
	}
	token := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
	})
	srv := httptest.NewServer(c.Wrap(token))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/oauth2/token", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("preflight:", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"),
		resp.Header.Get("Access-Control-Allow-Headers"), resp.Header.Get("Access-Control-Max-Age"))

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token", nil)
	req.Header.Set("Origin", "https://app.example.com")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("refusal:", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	// Output:
	// preflight: 204 https://app.example.com authorization 3600
	// refusal: 401 https://app.example.com
}
