package lambda

import (
	"strings"
	"testing"
)

// An invocation's log tail is its output from the capture's start to its
// REPORT line: a line after REPORT belongs to the next invocation.
func TestLogTailOneInvocation(t *testing.T) {
	var l instanceLog
	l.line("before the capture")
	c := l.begin()
	for _, s := range []string{"START RequestId: r1 Version: $LATEST", "hello", "END RequestId: r1", "REPORT RequestId: r1\tDuration: 1 ms"} {
		if !l.line(s) {
			t.Fatalf("line %q dropped", s)
		}
	}
	l.line("START RequestId: r2 Version: $LATEST")
	l.finish(nil) // the REPORT line came: returns at once
	got := string(c.tail())
	want := "START RequestId: r1 Version: $LATEST\nhello\nEND RequestId: r1\nREPORT RequestId: r1\tDuration: 1 ms\n"
	if got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

// The tail is the last 4 KB, as Lambda's, and ends with the REPORT line.
func TestLogTailLast4KB(t *testing.T) {
	var l instanceLog
	c := l.begin()
	for i := 0; i < 200; i++ {
		l.line(strings.Repeat("x", 99))
	}
	l.line("REPORT RequestId: r1")
	got := c.tail()
	if len(got) != maxLogTail || !strings.HasSuffix(string(got), "REPORT RequestId: r1\n") {
		t.Errorf("tail is %d bytes ending %q, want %d ending with the REPORT line", len(got), got[max(0, len(got)-30):], maxLogTail)
	}
}

// An instance that dies before its REPORT line ends the wait; a stopping
// instance's lines are dropped (the runtime's noise as it dies).
func TestLogTailDiedAndStopping(t *testing.T) {
	var l instanceLog
	c := l.begin()
	l.line("START RequestId: r1")
	died := make(chan struct{})
	close(died)
	l.finish(died)
	if got := string(c.tail()); got != "START RequestId: r1\n" {
		t.Errorf("tail = %q", got)
	}
	l.stop()
	if l.line("failed to get the next invoke: connection refused") {
		t.Error("a stopping instance's line was kept")
	}
}
