package checkout

import (
	"math"
	"strings"
	"testing"
)

func TestValidCurrency(t *testing.T) {
	for _, c := range []string{"INR", "USD", "EUR", "JPY", "KWD", "XOF", "ZWG"} {
		if !ValidCurrency(c) {
			t.Errorf("%s rejected", c)
		}
	}
	for _, c := range []string{"", "IN", "INRR", "inr", "Inr", "ABC", "XAU", "XXX", "XTS", "D E", "DXA", "NRA", "R I", "I\x00R"} {
		if ValidCurrency(c) {
			t.Errorf("%q accepted", c)
		}
	}
	// Every listed code is three upper-case letters, single-spaced.
	for _, c := range strings.Split(iso4217, " ") {
		if len(c) != 3 || strings.ToUpper(c) != c {
			t.Errorf("bad list entry %q", c)
		}
	}
}

func TestCheckedArithmetic(t *testing.T) {
	mul := []struct {
		q, p, want int64
		ok         bool
	}{
		{2, 250000, 500000, true},
		{1, math.MaxInt64, math.MaxInt64, true},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{2, math.MaxInt64/2 + 1, 0, false},
		{math.MaxInt64, math.MaxInt64, 0, false},
		{1 << 32, 1 << 31, 0, false}, // exactly 2^63
		{0, math.MaxInt64, 0, true},
		{-1, 5, 0, false},
	}
	for _, c := range mul {
		got, ok := mulAmount(c.q, c.p)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("mulAmount(%d,%d) = %d,%v", c.q, c.p, got, ok)
		}
	}
	add := []struct {
		a, b, want int64
		ok         bool
	}{
		{1, 2, 3, true},
		{math.MaxInt64, 0, math.MaxInt64, true},
		{math.MaxInt64, 1, 0, false},
		{math.MaxInt64 / 2, math.MaxInt64/2 + 1, math.MaxInt64, true},
		{math.MaxInt64/2 + 1, math.MaxInt64/2 + 1, 0, false},
		{-1, 1, 0, false},
	}
	for _, c := range add {
		got, ok := addAmount(c.a, c.b)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("addAmount(%d,%d) = %d,%v", c.a, c.b, got, ok)
		}
	}
}
