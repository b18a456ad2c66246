package apigw

import (
	"net/url"
	"strings"

	"github.com/acme/idemcheckout/pkg/idemddb/internal/httpcontract"
	"github.com/aws/aws-lambda-go/events"
)

// headerValues returns every value of the header name in headers, matching
// the name case-insensitively.
func headerValues(headers map[string]string, name string) []string {
	var vals []string
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			vals = append(vals, v)
		}
	}
	return vals
}

// headerValuesV1 prefers multiValueHeaders, which API Gateway fills with
// every occurrence, over headers, which holds the last one.
func headerValuesV1(r *events.APIGatewayProxyRequest, name string) []string {
	var vals []string
	for k, vs := range r.MultiValueHeaders {
		if strings.EqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	if len(vals) == 0 {
		vals = headerValues(r.Headers, name)
	}
	return vals
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func fromV1(r *events.APIGatewayProxyRequest) *httpcontract.Request {
	method := strings.ToUpper(firstNonEmpty(r.HTTPMethod, r.RequestContext.HTTPMethod))
	resource := firstNonEmpty(r.Resource, r.RequestContext.ResourcePath, r.Path)
	q := url.Values(r.MultiValueQueryStringParameters)
	if len(q) == 0 && len(r.QueryStringParameters) > 0 {
		q = url.Values{}
		for k, v := range r.QueryStringParameters {
			q.Set(k, v)
		}
	}
	return &httpcontract.Request{
		Method:      method,
		Route:       method + " " + resource,
		Path:        r.Path,
		Query:       q.Encode(),
		KeyValues:   headerValuesV1(r, HeaderName),
		Prefer:      headerValuesV1(r, PreferHeader),
		ContentType: first(headerValuesV1(r, "Content-Type")),
		Body:        []byte(r.Body),
		Base64:      r.IsBase64Encoded,
		Principal:   httpcontract.PrincipalV1(&r.RequestContext),
		RequestID:   r.RequestContext.RequestID,
	}
}

func fromV2(r *events.APIGatewayV2HTTPRequest) *httpcontract.Request {
	method := strings.ToUpper(r.RequestContext.HTTP.Method)
	rk := firstNonEmpty(r.RouteKey, r.RequestContext.RouteKey, r.RawPath)
	route := method + " " + rk
	if _, p, ok := strings.Cut(rk, " "); ok && strings.HasPrefix(p, "/") {
		route = method + " " + p // "POST /orders", "ANY /orders" → "POST /orders"
	}
	query := r.RawQueryString
	if q, err := url.ParseQuery(r.RawQueryString); err == nil {
		query = q.Encode()
	}
	return &httpcontract.Request{
		Method:      method,
		Route:       route,
		Path:        firstNonEmpty(r.RawPath, r.RequestContext.HTTP.Path),
		Query:       query,
		KeyValues:   headerValues(r.Headers, HeaderName),
		Prefer:      headerValues(r.Headers, PreferHeader),
		ContentType: first(headerValues(r.Headers, "Content-Type")),
		Body:        []byte(r.Body),
		Base64:      r.IsBase64Encoded,
		Principal:   httpcontract.PrincipalV2(r.RequestContext.Authorizer),
		RequestID:   r.RequestContext.RequestID,
	}
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
