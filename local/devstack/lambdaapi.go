package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Lambda Invoke API on loopback, like `sam local start-lambda`: the AWS
// CLI (aws lambda invoke --endpoint-url) and the SDKs' Lambda clients
// (BaseEndpoint) call POST /2015-03-31/functions/{name}/invocations.
//   - X-Amz-Invocation-Type RequestResponse (default): 200 with the
//     function's result; a function error is 200 with X-Amz-Function-Error:
//     Unhandled and the error document, as Lambda answers.
//   - Event: 202 at once; the invoke runs in the background (one log line).
//   - DryRun: 204.
//   - An unknown function is 404 ResourceNotFoundException, a payload over
//     6 MB 413 RequestTooLargeException, invalid JSON 400
//     InvalidRequestContentException.
// The name may be the function's logical id, its ARN, or either with a
// :qualifier ($LATEST). X-Amz-Log-Type: Tail is not supported (the logs go
// to the stack's output).

type lambdaAPI struct {
	s    *Stack
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

func startLambdaAPI(s *Stack, addr string) (*lambdaAPI, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &lambdaAPI{s: s, ln: ln, done: make(chan struct{})}
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
func (l *lambdaAPI) URL() string { return "http://" + l.ln.Addr().String() }

func (l *lambdaAPI) close() {
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

func (l *lambdaAPI) invocations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	raw := r.PathValue("name")
	id := functionName(raw)
	if l.s.pools[id] == nil {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: arn:aws:lambda:"+l.s.cfg.Region+":"+fakeAccount+":function:"+raw)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload+1))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "could not read the request body")
		return
	}
	if len(payload) > maxInvokePayload {
		lambdaError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than "+strconv.Itoa(maxInvokePayload)+" bytes for the InvokeFunction operation")
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
		l.s.bg.Add(1)
		go func() {
			defer l.s.bg.Done()
			ctx, cancel := context.WithTimeout(l.s.bgctx, 15*time.Minute)
			defer cancel()
			_, err := l.s.invoke(ctx, id, payload)
			l.s.logf("lambda invoke %s (Event) %s%s", id, time.Since(start).Round(100*time.Microsecond), errSuffix(err))
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "X-Amz-Invocation-Type "+typ+" is not RequestResponse, Event or DryRun")
		return
	}
	// As with Lambda, a caller that disconnects does not stop the invocation.
	out, err := l.s.invoke(context.WithoutCancel(r.Context()), id, payload)
	l.s.logf("lambda invoke %s %s%s", id, time.Since(start).Round(100*time.Microsecond), errSuffix(err))
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
