package ddbtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/idemcheckout/ddblocal/localddb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// closingBody is a request body as the SDK hands it to the transport: once
// the SDK has the response it closes the body, and a read after that ends
// early (io.EOF), as smithy-go's closed body does.
type closingBody struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func (b *closingBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *closingBody) Close() error { b.closed.Store(true); return nil }

// earlyServer answers a request's headers before it has read the body: it
// sends the status line and headers, waits until release is closed, then
// reads the whole body and only then sends the response body "{}". A
// request whose body could not be written in full gets no response body.
func earlyServer(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n")
		<-release
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := io.Copy(io.Discard, req.Body); err != nil || n != req.ContentLength {
			return // the body was cut short: no answer
		}
		_, _ = io.WriteString(conn, "{}")
	}()
	return "http://" + ln.Addr().String()
}

// roundTripClosing sends a large body through rt, closes the body as soon
// as the response headers arrive (as the SDK does), lets the server read,
// and returns the response body.
func roundTripClosing(t *testing.T, rt http.RoundTripper) ([]byte, error) {
	t.Helper()
	release := make(chan struct{})
	url := earlyServer(t, release)
	// Far larger than loopback socket buffers, so the writer is still
	// writing when the headers arrive.
	payload := bytes.Repeat([]byte("x"), 64<<20)
	body := &closingBody{r: bytes.NewReader(payload)}
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(payload))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		close(release)
		return nil, err
	}
	defer resp.Body.Close()
	body.Close() // what smithy-go does once it has the response
	close(release)
	return io.ReadAll(resp.Body)
}

func TestOwnBodyTransportKeepsTheBodyItSends(t *testing.T) {
	t.Run("own body", func(t *testing.T) {
		rt := &localddb.OwnBodyTransport{Base: &http.Transport{}}
		got, err := roundTripClosing(t, rt)
		if err != nil || string(got) != "{}" {
			t.Fatalf("answer %q, %v; want {} (the body was written in full)", got, err)
		}
	})
	// The control: the plain transport loses the answer of a request whose
	// body is closed under its writer. If this ever passes, the test above
	// no longer proves anything.
	t.Run("control: plain transport", func(t *testing.T) {
		got, err := roundTripClosing(t, &http.Transport{})
		t.Logf("plain transport: answer %q, error %v", got, err)
		if err == nil && string(got) == "{}" {
			t.Fatalf("the plain transport got the answer; the scenario no longer reproduces the lost reply")
		}
	})
}

// countingServer accepts connections, counts the requests it reads in
// full, answers the first answered of them with "{}" and closes the
// connection on the others without answering.
type countingServer struct {
	mu       sync.Mutex
	requests int
	answer   func(n int) bool
}

func (s *countingServer) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.conn(conn)
		}
	}()
	return "http://" + ln.Addr().String()
}

func (s *countingServer) conn(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		s.mu.Lock()
		s.requests++
		n := s.requests
		s.mu.Unlock()
		if !s.answer(n) {
			return // drop the connection: the reply is lost
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n\r\n{}")
	}
}

func (s *countingServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func TestNewClientMakesOneAttemptPerRequest(t *testing.T) {
	// Every second request loses its reply; the first one warms a
	// keep-alive connection, so the second is sent on a reused one (where
	// net/http would retry a replayable request).
	srv := &countingServer{answer: func(n int) bool { return n%2 == 1 }}
	c := localddb.NewClient(srv.serve(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func() error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String("t"),
			Item:      map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "k"}},
		})
		return err
	}
	for i := 1; i <= 6; i++ {
		err := put()
		if want := i%2 == 1; (err == nil) != want {
			t.Fatalf("request %d: err %v; want success %v", i, err, want)
		}
		if got := srv.count(); got != i {
			t.Fatalf("after %d calls the server read %d requests; want one attempt per call", i, got)
		}
	}
}

func TestClientLoseRepliesAppliesThenFails(t *testing.T) {
	srv := &countingServer{answer: func(int) bool { return true }}
	c := Wrap(localddb.NewClient(srv.serve(t)))
	c.LoseReplies("PutItem", 1)
	ctx := context.Background()
	in := &dynamodb.PutItemInput{TableName: aws.String("t"),
		Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "k"}}}
	if _, err := c.PutItem(ctx, in); !errors.Is(err, ErrLostReply) {
		t.Fatalf("first put: %v; want ErrLostReply", err)
	}
	if _, err := c.PutItem(ctx, in); err != nil {
		t.Fatalf("second put: %v", err)
	}
	if srv.count() != 2 || c.Count("PutItem") != 2 || c.Total() != 2 {
		t.Fatalf("server %d, counted %d/%d; want 2 (the lost reply's request reached the server)", srv.count(), c.Count("PutItem"), c.Total())
	}
	c.Before(func(op string, in any) error { return ErrInjected })
	if _, err := c.PutItem(ctx, in); !errors.Is(err, ErrInjected) || srv.count() != 2 {
		t.Fatalf("injected: %v, server %d; want ErrInjected and no request sent", err, srv.count())
	}
	if old := c.Reset(); old["PutItem"] != 3 || c.Total() != 0 {
		t.Fatalf("reset returned %v, total now %d", old, c.Total())
	}
}
