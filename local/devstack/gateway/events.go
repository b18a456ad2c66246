package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acme/idemcheckout/local/devstack/template"
	"github.com/aws/aws-lambda-go/events"
)

// requestInfo is what the gateway knows about one incoming request.
type requestInfo struct {
	Req        *http.Request
	Body       []byte
	Route      *Route
	PathParams map[string]string
	JWT        *jwtResult
	Now        time.Time
	RequestID  string
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isTextContent reports whether API Gateway would pass a body of this
// content type as text (otherwise it base64-encodes it).
func isTextContent(ct string) bool {
	if ct == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if _, ok := params["charset"]; ok {
		return true
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded",
		mt == "application/graphql":
		return true
	}
	return false
}

func encodeBody(r *http.Request, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	// A body that is not valid UTF-8 is passed base64-encoded whatever its
	// content type, as API Gateway passes binary payloads: a Go string
	// would reach the function with U+FFFD in place of the bytes.
	if isTextContent(r.Header.Get("Content-Type")) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// buildV2Event builds an HttpApi payload format 2.0 event.
func buildV2Event(ri *requestInfo) events.APIGatewayV2HTTPRequest {
	r := ri.Req
	headers := map[string]string{}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	if r.ContentLength > 0 {
		headers["content-length"] = fmt.Sprint(r.ContentLength)
	}
	var cookies []string
	for _, c := range r.Header.Values("Cookie") {
		for _, p := range strings.Split(c, ";") {
			if p = strings.TrimSpace(p); p != "" {
				cookies = append(cookies, p)
			}
		}
	}
	var qs map[string]string
	q := r.URL.Query()
	if len(q) > 0 {
		qs = map[string]string{}
		for k, vs := range q {
			qs[k] = strings.Join(vs, ",")
		}
	}
	body, b64 := encodeBody(r, ri.Body)
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              ri.Route.RouteKey(),
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: qs,
		PathParameters:        ri.PathParams,
		Body:                  body,
		IsBase64Encoded:       b64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     ri.Route.RouteKey(),
			AccountID:    template.FakeAccount,
			Stage:        "$default",
			RequestID:    ri.RequestID,
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         ri.Now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    ri.Now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if ri.JWT != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: ri.JWT.Claims,
				Scopes: ri.JWT.Scopes,
			},
		}
	}
	return ev
}

// buildV1Event builds a REST Api (payload format 1.0) proxy event.
func buildV1Event(ri *requestInfo) events.APIGatewayProxyRequest {
	r := ri.Req
	headers := map[string]string{}
	mvh := map[string][]string{}
	for k, vs := range r.Header {
		headers[k] = vs[len(vs)-1]
		mvh[k] = append([]string(nil), vs...)
	}
	if r.Host != "" {
		headers["Host"] = r.Host
		mvh["Host"] = []string{r.Host}
	}
	var qs map[string]string
	var mvq map[string][]string
	q := r.URL.Query()
	if len(q) > 0 {
		qs, mvq = map[string]string{}, map[string][]string{}
		for k, vs := range q {
			qs[k] = vs[len(vs)-1]
			mvq[k] = vs
		}
	}
	body, b64 := encodeBody(r, ri.Body)
	stage := "Prod"
	return events.APIGatewayProxyRequest{
		Resource:                        ri.Route.Event.HTTP.Path,
		Path:                            r.URL.Path,
		HTTPMethod:                      r.Method,
		Headers:                         headers,
		MultiValueHeaders:               mvh,
		QueryStringParameters:           qs,
		MultiValueQueryStringParameters: mvq,
		PathParameters:                  ri.PathParams,
		Body:                            body,
		IsBase64Encoded:                 b64,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         template.FakeAccount,
			ResourceID:        "local",
			Stage:             stage,
			RequestID:         ri.RequestID,
			ExtendedRequestID: ri.RequestID,
			ResourcePath:      ri.Route.Event.HTTP.Path,
			Path:              "/" + stage + r.URL.Path,
			HTTPMethod:        r.Method,
			RequestTime:       ri.Now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch:  ri.Now.UnixMilli(),
			APIID:             "local",
			Protocol:          r.Proto,
			DomainName:        r.Host,
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
}

// event is the JSON Lambda event of ri's route: payload format 1.0
// (buildV1Event) or 2.0 (buildV2Event).
func (ri *requestInfo) event() ([]byte, error) {
	if ri.Route.V1() {
		return json.Marshal(buildV1Event(ri))
	}
	return json.Marshal(buildV2Event(ri))
}

// response is the HTTP response the gateway writes.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// errBadFunctionResponse means the function's answer is not a valid proxy
// response; API Gateway answers 502.
var errBadFunctionResponse = errors.New("malformed Lambda proxy response")

type v2Envelope struct {
	StatusCode        *int                `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// parseV2Response converts a function's output to an HTTP response for
// payload format 2.0, including the "simple response" inference.
func parseV2Response(out []byte) (*response, error) {
	var probe any
	if err := json.Unmarshal(out, &probe); err != nil {
		return nil, fmt.Errorf("%w: not JSON", errBadFunctionResponse)
	}
	obj, isObj := probe.(map[string]any)
	if !isObj || obj["statusCode"] == nil {
		// Simple response: status 200, JSON content type, the output as body
		// (a JSON string is sent as its contents).
		body := out
		if s, ok := probe.(string); ok {
			body = []byte(s)
		}
		return &response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}, nil
	}
	var env v2Envelope
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadFunctionResponse, err)
	}
	resp, err := envelopeResponse(*env.StatusCode, env.Headers, env.MultiValueHeaders, env.Body, env.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	for _, c := range env.Cookies {
		resp.Header.Add("Set-Cookie", c)
	}
	return resp, nil
}

// parseV1Response converts a REST Api proxy response.
func parseV1Response(out []byte) (*response, error) {
	var env v2Envelope
	if err := json.Unmarshal(out, &env); err != nil || env.StatusCode == nil {
		return nil, fmt.Errorf("%w: want an object with statusCode", errBadFunctionResponse)
	}
	return envelopeResponse(*env.StatusCode, env.Headers, env.MultiValueHeaders, env.Body, env.IsBase64Encoded)
}

func envelopeResponse(status int, headers map[string]string, mvh map[string][]string, body string, b64 bool) (*response, error) {
	if status < 100 || status > 599 {
		return nil, fmt.Errorf("%w: statusCode %d", errBadFunctionResponse, status)
	}
	resp := &response{Status: status, Header: http.Header{}}
	keys := make([]string, 0, len(mvh))
	for k := range mvh {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range mvh[k] {
			resp.Header.Add(k, v)
		}
	}
	for k, v := range headers {
		if len(mvh) > 0 {
			if _, dup := mvh[k]; dup {
				continue
			}
		}
		resp.Header.Set(k, v)
	}
	if b64 {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("%w: isBase64Encoded body is not base64", errBadFunctionResponse)
		}
		resp.Body = b
	} else {
		resp.Body = []byte(body)
	}
	return resp, nil
}
