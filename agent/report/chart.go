package report

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Geometry of the speed chart, in SVG user units (about a pixel; the page
// scales the chart to its width).
const (
	chartTop      = 30.0  // panel titles and room for labels above the bars
	chartPlotH    = 160.0 // height of the plot, from 0 to the top of the scale
	chartLabelH   = 40.0  // two lines of bar names below the baseline
	chartAxisW    = 44.0  // scale labels left of a panel's plot
	chartBarW     = 60.0
	chartBarGap   = 50.0
	chartLineW    = 120.0 // labels of the package lines, right of the plot
	chartPanelGap = 20.0
)

// chart is the speed chart: a download panel and an upload panel, each with
// its bars, its scale and lines at the package rate and at the pass mark
// (MinRatio of it). The panels have their own scales because packages are
// often asymmetric (300 down, 30 up).
type chart struct {
	W, H float64
	// Base is the y of every panel's zero.
	Base float64
	// Title sums the chart up in words for readers that cannot see it.
	Title  string
	Panels []panel
}

type panel struct {
	// Direction is download or upload.
	Direction string
	Title     string
	// X0 and X1 are the left and right of the plot; TickX is where the
	// scale's labels end and LineX where the lines' labels start.
	X0, X1, TickX, LineX float64
	Ticks                []tick
	Bars                 []bar
	Lines                []refLine
}

type tick struct {
	Y     float64
	Label string
}

type bar struct {
	Kind       string
	X, Y, W, H float64
	// CX is the bar's centre, for its labels.
	CX float64
	// Class is ok (at or above the pass mark), low (below it) or na (no
	// package to compare with); Fill is its colour.
	Class, Fill string
	// Value is the bar's value as printed above it; ValueY is where.
	Value  string
	ValueY float64
	Label  []labelLine
}

type labelLine struct {
	Y    float64
	Text string
}

type refLine struct {
	// Class is pkg (the package rate) or min (the pass mark).
	Class  string
	Y      float64
	Dash   string
	Label  string
	LabelY float64
}

// speedKinds are the kinds the chart draws, by panel, in order.
var speedKinds = []struct {
	direction string
	kinds     []string
}{
	{"download", []string{SpeedLaptopDown, SpeedGatewayDown}},
	{"upload", []string{SpeedLaptopUp, SpeedGatewayUp}},
}

// buildChart lays out the chart of samples against pkg; it returns nil when
// no sample is of a kind the chart draws.
func buildChart(samples []SpeedSample, pkg Package, l Lang) *chart {
	c := &chart{H: chartTop + chartPlotH + chartLabelH, Base: chartTop + chartPlotH}
	x := 0.0
	var summary []string
	for _, group := range speedKinds {
		var vals []SpeedSample
		for _, s := range samples {
			if slices.Contains(group.kinds, s.Kind) {
				vals = append(vals, s)
			}
		}
		if len(vals) == 0 {
			continue
		}
		rate := pkg.DownMbps
		title := l.pair("下行速率", "Download")
		if group.direction == "upload" {
			rate = pkg.UpMbps
			title = l.pair("上行速率", "Upload")
		}
		if x > 0 {
			x += chartPanelGap
		}
		p := c.panel(x, group.direction, title.Plain()+" (Mbit/s)", vals, rate, pkg.ratio(), l)
		c.Panels = append(c.Panels, p)
		x = p.X1 + chartLineW
		for i, b := range p.Bars {
			summary = append(summary, speedName(vals[i].Kind, l).Plain()+" "+b.Value+" Mbit/s")
		}
	}
	if len(c.Panels) == 0 {
		return nil
	}
	c.W = x
	sep, colon := "，", "："
	if l == English {
		sep, colon = ", ", ": "
	}
	c.Title = l.pair("测速结果", "Speed test").Plain() + colon + strings.Join(summary, sep)
	return c
}

// hasLines reports whether any panel has a package line.
func (c *chart) hasLines() bool {
	for _, p := range c.Panels {
		if len(p.Lines) > 0 {
			return true
		}
	}
	return false
}

// panel lays out one panel whose left edge is x.
func (c *chart) panel(x float64, direction, title string, vals []SpeedSample, rate, ratio float64, l Lang) panel {
	p := panel{Direction: direction, Title: title, X0: x + chartAxisW}
	p.TickX = p.X0 - 4
	p.X1 = p.X0 + float64(len(vals))*(chartBarW+chartBarGap)
	p.LineX = p.X1 + 4
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		rate = 0
	}
	max := rate
	for i := range vals {
		vals[i].Mbps = finite(vals[i].Mbps)
		max = math.Max(max, vals[i].Mbps)
	}
	top := scaleTop(max)
	y := func(v float64) float64 { return c.Base - v/top*chartPlotH }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		p.Ticks = append(p.Ticks, tick{Y: y(v), Label: num(v)})
	}
	for i, s := range vals {
		b := bar{Kind: s.Kind, W: chartBarW, Value: num(s.Mbps), Class: "na", Fill: "#1b5fae"}
		b.X = p.X0 + chartBarGap/2 + float64(i)*(chartBarW+chartBarGap)
		b.CX = b.X + chartBarW/2
		b.Y = y(s.Mbps)
		b.H = c.Base - b.Y
		b.ValueY = b.Y - 4
		if rate > 0 {
			b.Class, b.Fill = "ok", "#2e8540"
			if s.Mbps < rate*ratio*(1-1e-9) {
				b.Class, b.Fill = "low", "#c5221f"
			}
		}
		for j, line := range speedName(s.Kind, l).lines() {
			b.Label = append(b.Label, labelLine{Y: c.Base + 14 + 13*float64(j), Text: line})
		}
		p.Bars = append(p.Bars, b)
	}
	if rate > 0 {
		py, my := y(rate), y(rate*ratio)
		p.Lines = []refLine{
			{Class: "pkg", Y: py, Dash: "6 3", Label: l.pair("签约带宽", "Package").Plain() + " " + num(rate), LabelY: py - 3},
			{Class: "min", Y: my, Dash: "2 2", Label: num(ratio*100) + "% " + num(rate*ratio), LabelY: my + 11},
		}
	}
	return p
}

// finite returns v, or 0 for a value that is negative or not a number.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// scaleTop returns the top of a scale of four equal steps that holds max
// with a little room above it: a step of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or
// 8 times a power of ten. A scale with nothing on it goes to 100.
func scaleTop(max float64) float64 {
	if max <= 0 {
		return 100
	}
	want := max * 1.05 / 4
	p := math.Pow(10, math.Floor(math.Log10(want)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= want*(1-1e-12) {
			return 4 * m * p
		}
	}
	return 40 * p
}

// num prints a rate or an SVG coordinate with at most one decimal: 312.35
// gives "312.4", 300 gives "300".
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// speedName names a sample kind.
func speedName(kind string, l Lang) txt {
	switch kind {
	case SpeedLaptopDown:
		return l.pair("电脑下载", "Laptop download")
	case SpeedLaptopUp:
		return l.pair("电脑上传", "Laptop upload")
	case SpeedGatewayDown:
		return l.pair("网关下载", "Gateway download")
	case SpeedGatewayUp:
		return l.pair("网关上传", "Gateway upload")
	}
	return l.pair(kind, kind)
}
