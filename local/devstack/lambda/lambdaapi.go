package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/local/devstack/template"
)

// The Lambda Invoke API on loopback, like `sam local start-lambda`: the AWS
// CLI (aws lambda invoke --endpoint-url) and the SDKs' Lambda clients
// (BaseEndpoint) call POST /2015-03-31/functions/{name}/invocations.
//   - X-Amz-Invocation-Type RequestResponse (default): 200 with the
//     function's result; a function error is 200 with X-Amz-Function-Error:
//     Unhandled and the error document, as Lambda answers.
//   - Event: 202 at once; the invoke runs in the background (one log line).
//   - DryRun: 204.
//   - X-Amz-Log-Type: Tail (aws lambda invoke --log-type Tail, make invoke):
//     X-Amz-Log-Result is the base64 of the invocation's last 4 KB of
//     output, START to REPORT, as Lambda's; the output goes to the stack's
//     output as well.
//   - An unknown function is 404 ResourceNotFoundException (its message
//     names the functions the stack serves), a payload over 6 MB 413
//     RequestTooLargeException, invalid JSON 400
//     InvalidRequestContentException.
// The name may be the function's logical id, its ARN, or either with a
// :qualifier ($LATEST).

// API is the Lambda Invoke API serving the pools on a loopback port.
type API struct {
	ps   *Pools
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// ServeAPI serves the Lambda Invoke API for the pools on addr until Close.
func (ps *Pools) ServeAPI(addr string) (*API, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &API{ps: ps, ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", l.invocations)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lambdaError(w, http.StatusNotFound, "UnknownOperationException", "only Invoke (POST /2015-03-31/functions/{name}/invocations) is served locally")
	})
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(l.done)
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

// URL is the endpoint's base URL.
func (l *API) URL() string { return "http://" + l.ln.Addr().String() }

// Close stops the endpoint, waiting up to 3 s for the calls in progress;
// nil-safe.
func (l *API) Close() {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if l.srv.Shutdown(ctx) != nil {
		l.srv.Close()
	}
	<-l.done
}

// lambdaError writes an error the SDK decodes by X-Amzn-ErrorType.
func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

// functionName reduces an ARN or a qualified name to the logical id.
func functionName(name string) string {
	if strings.HasPrefix(name, "arn:") {
		parts := strings.Split(name, ":")
		if len(parts) >= 7 {
			name = parts[6]
		}
	} else if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return name
}

func (l *API) invocations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	raw := r.PathValue("name")
	id := functionName(raw)
	if !l.ps.runs(id) {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: arn:aws:lambda:"+l.ps.cfg.Region+":"+template.FakeAccount+":function:"+raw+
			" (this local stack serves "+strings.Join(l.ps.names(), ", ")+")")
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, MaxInvokePayload+1))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body")
		return
	}
	if len(payload) > MaxInvokePayload {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than "+strconv.Itoa(MaxInvokePayload)+" bytes for the InvokeFunction operation")
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		l.ps.bg.Add(1)
		go func() {
			defer l.ps.bg.Done()
			ctx, cancel := context.WithTimeout(l.ps.bgctx, 15*time.Minute)
			defer cancel()
			_, err := l.ps.Invoke(ctx, id, payload)
			l.ps.cfg.Logf("lambda invoke %s (Event) %s%s", id, time.Since(start).Round(100*time.Microsecond), errSuffix(err))
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "X-Amz-Invocation-Type "+typ+" is not RequestResponse, Event or DryRun")
		return
	}
	var tail *[]byte
	if r.Header.Get("X-Amz-Log-Type") == "Tail" {
		tail = new([]byte)
	}
	// As with Lambda, a caller that disconnects does not stop the invocation.
	out, err := l.ps.invoke(context.WithoutCancel(r.Context()), id, payload, tail)
	if tail != nil {
		w.Header().Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString(*tail))
	}
	l.ps.cfg.Logf("lambda invoke %s %s%s", id, time.Since(start).Round(100*time.Microsecond), errSuffix(err))
	var fe *FunctionError
	switch {
	case errors.As(err, &fe):
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		out = fe.Payload
	case err != nil:
		lambdaError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// InvokeEndpoint calls function fn through the Lambda Invoke API at url
// (a running stack's) and writes the invocation's log tail to logs (when
// not nil), as `aws lambda invoke --log-type Tail` shows it. The
// function's own failure is a *FunctionError carrying Lambda's error
// document; an error the endpoint answers is its message.
func InvokeEndpoint(ctx context.Context, url, fn string, payload []byte, logs io.Writer) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/2015-03-31/functions/"+fn+"/invocations", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	if logs != nil {
		req.Header.Set("X-Amz-Log-Type", "Tail")
	}
	c := &http.Client{Timeout: 16 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if tail, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-Amz-Log-Result")); err == nil && logs != nil && len(tail) > 0 {
		_, _ = logs.Write(tail)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		var e struct{ Message string }
		if json.Unmarshal(out, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("%s: %s", resp.Header.Get("X-Amzn-ErrorType"), e.Message)
		}
		return nil, fmt.Errorf("lambda endpoint answered %s: %s", resp.Status, bytes.TrimSpace(out))
	case resp.Header.Get("X-Amz-Function-Error") != "":
		msg, _ := functionError(out)
		return nil, &FunctionError{Payload: out, Msg: msg, kind: errFunctionCrashed}
	}
	return out, nil
}
