package gen

import (
	"testing"
)

// FuzzFilterPayload feeds arbitrary frames to the sink's parser: it must
// never panic, and what it accepts must carry our header.
func FuzzFilterPayload(f *testing.F) {
	for _, tc := range tmplCases {
		tp, err := New(tc.config([]int{MinSize(tc.config(nil).Src.Is6(), tc.config(nil).VXLAN) + 3}))
		if err != nil {
			f.Fatal(err)
		}
		b := make([]byte, 512)
		n := tp.Fill(b, 0, 3, 42, 7)
		f.Add(b[:n], tc.vxlan)
	}
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, vx bool) {
		for _, flt := range []Filter{{Stream: 7, VXLAN: vx}, {Stream: 7, DstPort: 5001, VXLAN: vx}} {
			if p := flt.Payload(b); p != nil {
				if h, ok := DecodeHeader(p); !ok || h.Stream != 7 {
					t.Fatalf("accepted payload without our header: %x", p)
				}
			}
			s := NewSink(flt)
			s.Offer(b, 1)
		}
	})
}
