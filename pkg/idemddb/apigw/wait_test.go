package apigw

import (
	"testing"
	"time"
)

func TestPreferWait(t *testing.T) {
	for _, c := range []struct {
		in   []string
		secs int64
		ok   bool
	}{
		{nil, 0, false},
		{[]string{"wait=10"}, 10, true},
		{[]string{"Wait = 7"}, 7, true},
		{[]string{`wait="5"`}, 5, true},
		{[]string{"respond-async, wait=3"}, 3, true},
		{[]string{`handling=lenient; x="a,wait=9", wait=4`}, 4, true},
		{[]string{"return=minimal", "wait=2"}, 2, true},
		{[]string{"wait=2", "wait=9"}, 2, true}, // only the first counts
		{[]string{"wait=2;x=y"}, 2, true},
		{[]string{"wait"}, 0, false},
		{[]string{"wait=-1"}, 0, false},
		{[]string{"wait=1.5"}, 0, false},
		{[]string{"wait=soon"}, 0, false},
		{[]string{"waiting=3"}, 0, false},
		{[]string{"wait=99999999999999999999999"}, 1 << 62, true},
	} {
		secs, ok := preferWait(c.in)
		if secs != c.secs || ok != c.ok {
			t.Errorf("preferWait(%q) = %d, %v; want %d, %v", c.in, secs, ok, c.secs, c.ok)
		}
	}
}

func TestWaitFor(t *testing.T) {
	c := newConfig(nil)
	if d, applied := c.WaitFor(nil); d != 0 || applied != "" {
		t.Errorf("default without Prefer: %v %q; want no wait", d, applied)
	}
	if d, applied := c.WaitFor([]string{"wait=3"}); d != 3*time.Second || applied != "wait=3" {
		t.Errorf("Prefer: wait=3: %v %q", d, applied)
	}
	if d, applied := c.WaitFor([]string{"wait=3600"}); d != DefaultMaxWait || applied != "wait=10" {
		t.Errorf("Prefer: wait=3600: %v %q; want the cap", d, applied)
	}
	c = newConfig([]Option{WithWait(2 * time.Second), WithMaxWait(0)})
	if d, applied := c.WaitFor([]string{"wait=5"}); d != 2*time.Second || applied != "" {
		t.Errorf("WithMaxWait(0) ignores Prefer: %v %q", d, applied)
	}
	c = newConfig([]Option{WithWait(2 * time.Second)})
	if d, applied := c.WaitFor([]string{"wait=0"}); d != 0 || applied != "wait=0" {
		t.Errorf("Prefer: wait=0 asks for no wait: %v %q", d, applied)
	}
}
