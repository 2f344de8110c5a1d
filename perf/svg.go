package perf

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one line (or one bar colour) of a plot.
type Series struct {
	Name string
	X, Y []float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	svgW, svgH             = 720, 420
	padL, padR, padT, padB = 70, 190, 40, 50
)

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	for v := math.Floor(lo/step) * step; v <= hi+step/2; v += step {
		t = append(t, math.Round(v/step)*step)
	}
	return t
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e6 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(title))
}

func legend(b *strings.Builder, names []string) {
	x := svgW - padR + 15
	for i, n := range names {
		y := padT + 10 + i*18
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, x, y-10, palette[i%len(palette)])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+18, y, html.EscapeString(n))
	}
}

// LinePlot draws series as lines with markers on linear axes from 0.
func LinePlot(title, xlabel, ylabel string, series []Series) string {
	var b strings.Builder
	svgOpen(&b, title)
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range series {
		for i := range s.X {
			xmin, xmax, ymax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i]), math.Max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	yt := niceTicks(0, ymax*1.05, 6)
	ytop := yt[len(yt)-1]
	pw, ph := float64(svgW-padL-padR), float64(svgH-padT-padB)
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return padT + ph - y/ytop*ph }
	axes(&b, xlabel, ylabel)
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, svgW-padR, py(v), py(v), padL-6, py(v)+4, fmtTick(v))
	}
	for _, v := range niceTicks(xmin, xmax, 7) {
		if v < xmin || v > xmax {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(v), svgH-padB+16, fmtTick(v))
	}
	var names []string
	for i, s := range series {
		c := palette[i%len(palette)]
		var pts []string
		for k := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[k]), py(s.Y[k])))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(s.X[k]), py(s.Y[k]), c)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		names = append(names, s.Name)
	}
	legend(&b, names)
	b.WriteString("</svg>\n")
	return b.String()
}

func axes(b *strings.Builder, xlabel, ylabel string) {
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, padL, svgH-padB, svgW-padR, svgH-padB)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", padL, padT, padL, svgH-padB)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+(svgW-padL-padR)/2, svgH-12, html.EscapeString(xlabel))
	fmt.Fprintf(b, `<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+(svgH-padT-padB)/2, html.EscapeString(ylabel))
}

// BarPlot draws grouped bars, one bar per series in each group, on a log
// axis (latency spans decades). Series.Y has one value per group; values
// <= 0 are left out.
func BarPlot(title, ylabel string, groups []string, series []Series) string {
	var b strings.Builder
	svgOpen(&b, title)
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		for _, y := range s.Y {
			if y > 0 {
				lo, hi = math.Min(lo, y), math.Max(hi, y)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 == d0 {
		d1++
	}
	pw, ph := float64(svgW-padL-padR), float64(svgH-padT-padB)
	py := func(y float64) float64 { return padT + ph - (math.Log10(y)-d0)/(d1-d0)*ph }
	axes(&b, "", ylabel)
	for d := d0; d <= d1; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, svgW-padR, py(v), py(v), padL-6, py(v)+4, fmtTick(v))
	}
	gw := pw / float64(max(len(groups), 1))
	bw := gw * 0.8 / float64(max(len(series), 1))
	for g, name := range groups {
		x0 := padL + float64(g)*gw + gw*0.1
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+gw*0.4, svgH-padB+16, html.EscapeString(name))
		for i, s := range series {
			if g >= len(s.Y) || s.Y[g] <= 0 {
				continue
			}
			y := py(s.Y[g])
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3g</title></rect>`+"\n",
				x0+float64(i)*bw, y, bw*0.9, float64(svgH-padB)-y, palette[i%len(palette)], html.EscapeString(s.Name), html.EscapeString(name), s.Y[g])
		}
	}
	var names []string
	for _, s := range series {
		names = append(names, s.Name)
	}
	legend(&b, names)
	b.WriteString("</svg>\n")
	return b.String()
}
