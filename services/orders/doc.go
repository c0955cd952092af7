// Package orders is an example backend: the OrdersService of
// example/orders/v1, with its orders in memory. It shows every kind of
// call: GetOrder and PlaceOrder are unary, ImportOrders takes a stream of
// orders and answers with their sum, SyncOrders answers each order sent
// with the order as stored.
//
// Mount it like any connect service, with whatever interceptors the backend
// needs (such as the gateway's authentication interceptor, to verify the
// caller's token again):
//
//	path, h := orders.New().Handler(connect.WithInterceptors(auth))
//	mux.Handle(path, h)
//
// Methods that write record who called: the ClientID of the
// token.Principal in the context when the backend verifies tokens itself,
// otherwise the Portcullis-Client-Id header that the gateway sets (see
// [WithIdentityHeader]). A write without a caller fails with
// Unauthenticated.
package orders
