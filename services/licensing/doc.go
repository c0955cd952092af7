// Package licensing is an example backend: the LicensingService of
// example/licensing/v1, with its data in memory. It answers which licences a
// kind of business needs in a jurisdiction and keeps the licence orders
// businesses place, streaming their status changes to watchers.
//
// Mount it like any connect service, with whatever interceptors the backend
// needs (such as the gateway's authentication interceptor, to verify the
// caller's token again):
//
//	svc := licensing.New()
//	path, h := svc.Handler(connect.WithInterceptors(auth))
//	mux.Handle(path, h)
//	go svc.Run(ctx, time.NewTicker(10*time.Second).C) // orders progress over time
//
// Methods that write record who called: the ClientID of the
// token.Principal in the context when the backend verifies tokens itself,
// otherwise the Portcullis-Client-Id header that the gateway sets (see
// [WithIdentityHeader]). A write without a caller fails with
// Unauthenticated.
package licensing
