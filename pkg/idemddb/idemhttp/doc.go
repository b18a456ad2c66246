// Package idemhttp puts the Idempotency-Key HTTP contract of package apigw
// in front of a net/http handler, as a middleware:
//
//	mw := idemhttp.Middleware(store, idemhttp.WithPrincipal(idemhttp.LambdaWebAdapterPrincipal))
//	mux.Handle("POST /orders", mw(createOrder))
//
// It serves the same contract as apigw.WrapV1 and apigw.WrapV2, from the
// same code (see the apigw package documentation for the key's syntax, the
// scope and fingerprint, "Prefer: wait", the storage policy and the
// problems): a POST without a valid Idempotency-Key gets 400; the first
// request runs the handler; a repeat gets the stored status, headers and
// body byte for byte with "Idempotent-Replayed: true"; a duplicate while the
// first runs gets 409 with Retry-After (or waits, with "Prefer: wait=N"); the
// same key with another request gets 422; a body over the limit gets 413;
// an unreachable DynamoDB gets 503. Problems are application/problem+json.
//
// Its options are apigw's (Option is apigw.Option): the contract's settings
// are defined once for both front doors, apigw.WithWait, apigw.WithLogger,
// apigw.WithMaxBodyBytes and the rest, and this package adds the settings
// only net/http has, WithPrincipal, WithRoute and WithMaxResponseBytes.
//
// # Route and principal
//
// The scope is the route and the caller. The route is the Go 1.22
// http.ServeMux pattern that matched (r.Pattern, "POST /orders/{id}/pay"),
// so wrap each route's handler, not the whole mux (outside the mux the
// pattern is not known yet and the route falls back to the method and the
// concrete path); WithRoute gives a function of the request instead, for
// other routers (chi: chi.RouteContext(r.Context()).RoutePattern()).
//
// The caller comes from WithPrincipal, a function of the request; without
// it every caller is anonymous and shares one scope per route. Ready ones:
//
//   - APIGatewayV2Principal / APIGatewayV1Principal, for handlers run on
//     Lambda by aws-lambda-go-api-proxy (httpadapter.NewV2 / New), which
//     puts the API Gateway request context in the request's context: pass
//     its getter, core.GetAPIGatewayV2ContextFromContext (or
//     core.GetAPIGatewayContextFromContext). This package does not import
//     the proxy, so your module graph does not get its dependencies.
//   - LambdaWebAdapterPrincipal, for handlers behind the Lambda Web
//     Adapter, which passes the request context as JSON in the
//     x-amzn-request-context header. Trust it only behind the adapter: a
//     client reaching the server directly can send any header.
//
// Both name the caller as apigw does (JWT sub qualified by iss, a Lambda
// authorizer's principalId, an IAM or Cognito identity, an API key id), so
// one API served by both front doors has one scope per caller.
//
// A principal function that returns an error refuses the request with a
// 401 problem (idempotency-principal-unavailable) before the handler runs;
// nothing is stored. With apigw.WithPrincipalRequired, an anonymous caller ("")
// gets 403 (idempotency-principal-required).
//
//	401 idempotency-principal-unavailable
//
// # What net/http adds
//
//   - The handler runs on a context without the request's cancellation
//     (context.WithoutCancel): a client that disconnects does not cancel the
//     claimed work, as API Gateway and Lambda let an invocation finish. The
//     work's context ends instead before the claim's lease does (a detached
//     context has no deadline, so the lease is the store's DefaultLease and
//     the work's deadline LeaseMargin before its end): work never goes on
//     under a lapsed lease.
//   - The response is buffered up to WithMaxResponseBytes (default
//     DefaultMaxResponseBytes) and sent when the handler returns. A handler
//     that flushes (http.Flusher, http.ResponseController.Flush), or whose
//     body outgrows the buffer, is streamed from then on: the client gets
//     it as written, and it is never half-stored. If its status is one the
//     storage policy keeps, the record is completed without it, and a
//     repeat gets 409 idempotency-result-not-retained (the work ran; a
//     retry does not run it again); otherwise the key is released. The
//     store's own size limit (idemddb.Config.MaxResultBytes, after
//     compression) applies to buffered responses the same way.
//   - A handler that panics: the key is released, the panic and its stack
//     are logged, the client gets a 500 problem (idempotency-internal-error)
//     and the server goes on serving. If part of the response was already
//     streamed, the connection is aborted instead (http.ErrAbortHandler).
//   - The request body is read before the handler runs (up to the body
//     limit plus one byte) and handed to it in memory.
//   - The handler's ResponseWriter does not unwrap to the server's: Hijack
//     and the like are not available under the contract.
package idemhttp
