package lambda

import (
	"strings"
	"sync"
	"time"
)

// The log tail of one invocation, as Lambda returns it for X-Amz-Log-Type:
// Tail (X-Amz-Log-Result): the function's output from its START line to
// its REPORT line, the last 4 KB of it. make invoke asks for it, so the
// logs of a function run by a running stack reach the invoker's terminal
// and not only the stack's output.

// maxLogTail is how much of an invocation's output Lambda returns: the
// last 4 KB.
const maxLogTail = 4 << 10

// reportWait bounds how long an invocation that asked for its log tail
// waits, after the result, for the emulator's REPORT line: the emulator
// writes it after it answers.
const reportWait = time.Second

// instanceLog is an instance's output as its invocations see it: at most
// one capture at a time, the current invocation's, and whether the
// instance is being stopped (its last lines are the noise of its death:
// the runtime losing its emulator, and are dropped).
type instanceLog struct {
	mu       sync.Mutex
	current  *capture
	stopping bool
}

// capture is the output of one invocation that asked for its log tail.
type capture struct {
	mu     sync.Mutex
	buf    []byte
	report chan struct{} // closed on the REPORT line
	ended  bool
}

// begin starts capturing the instance's output for one invocation.
func (l *instanceLog) begin() *capture {
	c := &capture{report: make(chan struct{})}
	l.mu.Lock()
	l.current = c
	l.mu.Unlock()
	return c
}

// line records one output line; false when the instance is being
// stopped and the line is to be dropped.
func (l *instanceLog) line(s string) bool {
	l.mu.Lock()
	c, stopping := l.current, l.stopping
	if c != nil && strings.HasPrefix(s, "REPORT RequestId:") {
		l.current = nil
	}
	l.mu.Unlock()
	if stopping {
		return false
	}
	if c != nil {
		c.add(s)
	}
	return true
}

// finish ends the current capture, if any: it waits (bounded by
// reportWait, or until the instance dies) for the REPORT line, so the
// next invocation's output is not taken for this one's.
func (l *instanceLog) finish(died <-chan struct{}) {
	l.mu.Lock()
	c := l.current
	l.mu.Unlock()
	if c == nil {
		return
	}
	t := time.NewTimer(reportWait)
	defer t.Stop()
	select {
	case <-c.report:
	case <-died:
	case <-t.C:
	}
	l.mu.Lock()
	if l.current == c {
		l.current = nil
	}
	l.mu.Unlock()
}

// stop drops the instance's output from now on.
func (l *instanceLog) stop() {
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
}

func (c *capture) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.buf = append(c.buf, s...)
	c.buf = append(c.buf, '\n')
	if over := len(c.buf) - 4*maxLogTail; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...) // keep memory bounded
	}
	if strings.HasPrefix(s, "REPORT RequestId:") {
		c.ended = true
		close(c.report)
	}
}

// tail is the last maxLogTail bytes captured.
func (c *capture) tail() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	if len(b) > maxLogTail {
		b = b[len(b)-maxLogTail:]
	}
	return append([]byte(nil), b...)
}
