package web

import (
	"math"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// TestNiceStepAnyInt: niceStep returns for every int, including the
// largest (a usage total an attacker chose once looped for ever there),
// and its step gives at most five intervals up to the peak.
func TestNiceStepAnyInt(t *testing.T) {
	peaks := []int{math.MinInt, -1, 0, 1, 5, 6, 10, 11, 99, 100, 101, 1e12, 6e18, 9223372036854775790, math.MaxInt - 1, math.MaxInt}
	for p := 1; p > 0 && p <= math.MaxInt/10; p *= 10 {
		peaks = append(peaks, p-1, p, p+1, 2*p+1, 5*p+1)
	}
	for _, peak := range peaks {
		step := niceStep(peak)
		if step < 1 {
			t.Fatalf("niceStep(%d) = %d", peak, step)
		}
		if peak > 0 && (peak-1)/step >= 5 {
			t.Errorf("niceStep(%d) = %d: more than five intervals", peak, step)
		}
	}
	if got := niceStep(math.MaxInt); got != 2e18 {
		t.Errorf("niceStep(MaxInt64) = %d, want 2e18", got)
	}
	if got := niceStep(100); got != 20 {
		t.Errorf("niceStep(100) = %d, want 20", got)
	}
}

// TestBarChartExtremeValues: bars of any int stay inside the plot, with
// no negative height, and the top tick is at or above the peak.
func TestBarChartExtremeValues(t *testing.T) {
	for _, values := range [][]int{
		{math.MaxInt, 1, 0}, {9223372036854775790, 6e18}, {6e18, -5}, {math.MinInt, 0}, {0, 0}, {1e15, 3},
	} {
		ch := barChart(values, make([]string, len(values)))
		plotTop, plotBottom := float64(ch.Top), float64(ch.Height-ch.Bottom)
		for i, b := range ch.Bars {
			if b.H < 0 || math.IsNaN(b.H) || b.Y < plotTop-1e-9 || b.Y+b.H > plotBottom+1e-9 {
				t.Errorf("values %v: bar %d = %+v outside the plot [%v, %v]", values, i, b, plotTop, plotBottom)
			}
		}
		if n := len(ch.YTicks); n < 2 || n > 6 {
			t.Errorf("values %v: %d ticks", values, n)
		}
		for _, tk := range ch.YTicks {
			if tk.Label == "" || tk.Label[0] == '-' || tk.Y < plotTop-1e-9 || tk.Y > plotBottom+1e-9 {
				t.Errorf("values %v: tick %+v", values, tk)
			}
		}
	}
}

// TestChartLeavesOutVersionZero: version 0, the empty list a scope starts
// at, gets no bar and no row; a scope with nothing published says so.
func TestChartLeavesOutVersionZero(t *testing.T) {
	ch := makeChart([]allowlist.Version{{Version: 0}, {Version: 1, Entries: 4}, {Version: 2, Entries: 6}})
	if len(ch.Bars) != 2 || len(ch.Versions) != 2 || ch.Versions[0].Version != 1 || ch.XFirst != "version 1" || ch.First != 4 {
		t.Errorf("version 0 is in the chart: %d bars, versions %+v, first %q", len(ch.Bars), ch.Versions, ch.XFirst)
	}
	if empty := makeChart([]allowlist.Version{{Version: 0}}); len(empty.Bars) != 0 || empty.Desc != "No version of the common list has been published yet." {
		t.Errorf("only version 0: %d bars, %q", len(empty.Bars), empty.Desc)
	}
}

// TestEveryKindHasATitle: the administration page names every kind of
// organisation the registry takes in words.
func TestEveryKindHasATitle(t *testing.T) {
	for _, k := range allowlist.DepartmentKinds {
		if _, ok := kindTitles[k]; !ok {
			t.Errorf("kind %q has no title", k)
		}
	}
}

// TestReadableJSON: the audit page's detail loses JSON's HTML-safety
// escapes, and only those: an escaped backslash followed by the letters
// u003c stays as stored, as do other escapes, key order and numbers.
func TestReadableJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"reason":"R\u0026D \u003cteam\u003e"}`:    `{"reason":"R&D <team>"}`,
		`{"reason":"a\\u003cb"}`:                    `{"reason":"a\\u003cb"}`,
		`{"reason":"a\\\u003cb"}`:                   `{"reason":"a\\<b"}`,
		`{"z":1,"a":12345678901234567890,"q":"\""}`: `{"z":1,"a":12345678901234567890,"q":"\""}`,
		`null`: `null`,
	} {
		if got := readableJSON(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
