package apigw

import (
	"context"
	"errors"

	"github.com/acme/idemcheckout/pkg/idemddb"
	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// HandlerV1 is an API Gateway REST API (payload format 1.0) Lambda handler.
type HandlerV1 = func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// HandlerV2 is an API Gateway HTTP API (payload format 2.0) Lambda handler.
type HandlerV2 = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// WrapV1 returns h speaking the Idempotency-Key contract (see the package
// documentation) for a REST API, with s as the store. If s or h is nil, or
// an option is one of idemhttp's own, every call returns ErrNotConfigured
// (Lambda reports it; API Gateway answers 502).
func WrapV1(s *idemddb.Store, h HandlerV1, opts ...Option) HandlerV1 {
	c := newConfig(opts)
	if s == nil || h == nil || c.HTTP.Set {
		return func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, ErrNotConfigured
		}
	}
	w := httpcontract.NewEngine(s, c)
	return func(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		var fresh events.APIGatewayProxyResponse
		out, useFresh, err := w.Serve(ctx, fromV1(&req), func(ctx context.Context) (*httpcontract.Response, error) {
			r, err := h(ctx, req)
			if err != nil {
				return nil, err
			}
			fresh = r
			return &httpcontract.Response{Status: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
				Body: r.Body, Base64: r.IsBase64Encoded}, nil
		})
		switch {
		case err != nil:
			return events.APIGatewayProxyResponse{}, err
		case useFresh:
			return fresh, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: out.Status, Headers: out.Headers,
			MultiValueHeaders: out.MultiValueHeaders, Body: out.Body, IsBase64Encoded: out.Base64}, nil
	}
}

// WrapV2 returns h speaking the Idempotency-Key contract (see the package
// documentation) for an HTTP API, with s as the store. If s or h is nil, or
// an option is one of idemhttp's own, every call returns ErrNotConfigured.
func WrapV2(s *idemddb.Store, h HandlerV2, opts ...Option) HandlerV2 {
	c := newConfig(opts)
	if s == nil || h == nil || c.HTTP.Set {
		return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{}, ErrNotConfigured
		}
	}
	w := httpcontract.NewEngine(s, c)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var fresh events.APIGatewayV2HTTPResponse
		out, useFresh, err := w.Serve(ctx, fromV2(&req), func(ctx context.Context) (*httpcontract.Response, error) {
			r, err := h(ctx, req)
			if err != nil {
				return nil, err
			}
			fresh = r
			return &httpcontract.Response{Status: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders,
				Cookies: r.Cookies, Body: r.Body, Base64: r.IsBase64Encoded}, nil
		})
		switch {
		case err != nil:
			return events.APIGatewayV2HTTPResponse{}, err
		case useFresh:
			return fresh, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: out.Status, Headers: out.Headers,
			MultiValueHeaders: out.MultiValueHeaders, Cookies: out.Cookies, Body: out.Body, IsBase64Encoded: out.Base64}, nil
	}
}

// ErrNotConfigured is returned by a handler wrapped without a store or
// without a handler, or with an option of idemhttp alone (WithPrincipal,
// WithRoute, WithMaxResponseBytes: API Gateway names the caller and the
// route itself, and a Lambda response is never streamed).
var ErrNotConfigured = errors.New("apigw: handler wrapped without a store or a handler, or with an option of idemhttp alone")
