package authz_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
)

func Example() {
	ctx := context.Background()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	secret := []byte("an example secret of 32 bytes!!!")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v, err := token.NewVerifier(ctx, []token.Issuer{{
		Issuer: "https://issuer.example", Audiences: []string{"https://api.example"}, Secret: secret,
		AllowMissingKid: true, // one shared secret: its tokens need not name their key
	}}, token.WithClock(token.ClockFunc(func() time.Time { return now })))
	if err != nil {
		panic(err)
	}
	defer v.Close()
	az, err := authz.New(cat, v)
	if err != nil {
		panic(err)
	}

	// A token granting LIC.READ_REQUIREMENTS and LIC.READ_ORDERS (3).
	input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"iss":"https://issuer.example","aud":"https://api.example","client_id":"billing","exp":%d,"perms":{"LIC":3}}`, now.Add(time.Hour).Unix())))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	header := http.Header{"Authorization": {"Bearer " + input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))}}

	for _, procedure := range []string{
		"/example.licensing.v1.LicensingService/GetLicenceOrder",
		"/example.orders.v1.OrdersService/PlaceOrder",
	} {
		ctx, err := az.Authorize(ctx, procedure, header)
		if err != nil {
			var denied *authz.DeniedError
			fmt.Println(connect.CodeOf(err), errors.As(err, &denied), err.(*connect.Error).Message())
			fmt.Println(err.(*connect.Error).Meta().Get("WWW-Authenticate"))
			continue
		}
		p, _ := token.FromContext(ctx)
		fmt.Println("allowed:", p.ClientID)
	}
	// Output:
	// allowed: billing
	// permission_denied true missing ORD.WRITE
	// Bearer realm="portcullis", error="insufficient_scope", error_description="missing ORD.WRITE"
}
