package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// IMIX is the simple Internet mix, 7:4:1 of small, medium and large frames,
// as a 12-entry send order that spreads the large frame out. The classic
// figures, 64/594/1518, count the 4-byte FCS; without it (what we hand the
// kernel) they are 60/590/1514. FitIMIX raises the small frame to the
// header stack's minimum where that is larger (IPv6/UDP with our header
// needs 78, VXLAN more) and lowers the large one to the interface's MTU.
var IMIX = []int{60, 590, 60, 60, 590, 60, 1514, 60, 590, 60, 60, 590}

// FitIMIX returns IMIX with every size clamped to [min, max].
func FitIMIX(min, max int) []int {
	out := make([]int, len(IMIX))
	for i, n := range IMIX {
		out[i] = clamp(n, min, max)
	}
	return out
}

func clamp(n, lo, hi int) int {
	if n < lo {
		n = lo
	}
	if n > hi {
		n = hi
	}
	return n
}

// ParseSizes parses "imix", a size ("64"), or a comma list ("64,512,1500")
// into the sequence of frame lengths to cycle through. imix is true for
// "imix"; the caller then clamps with FitIMIX.
func ParseSizes(s string) (sizes []int, imix bool, err error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "imix" {
		return append([]int(nil), IMIX...), true, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, false, fmt.Errorf("size %q: want a number of bytes or imix", f)
		}
		if n <= 0 || n > MaxFrame {
			return nil, false, fmt.Errorf("size %d: must be between the header minimum and %d", n, MaxFrame)
		}
		sizes = append(sizes, n)
	}
	return sizes, false, nil
}
