package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.html from the current output")

var cst = time.FixedZone("CST", 8*3600)

func at(h, m int) time.Time { return time.Date(2025, 3, 14, h, m, 0, 0, cst) }

// sample is a finished e8 + iTV install: one fault fixed, one still open,
// the visit 15 minutes over its limit, accepted by the customer.
func sample() *Completion {
	opticalLow := &Finding{
		Code: "OPTICAL_RX_LOW", Severity: StatusWarn,
		Symptom:   "The optical receive power is too low.",
		Cause:     "Light is lost on the way: a dirty or damaged connector, a fibre bent too tightly or a bad splice.",
		Fix:       "Clean both SC/APC connectors, re-seat them, straighten tight bends and measure again.",
		SymptomZH: "光猫收光功率偏低。",
		CauseZH:   "光路损耗过大：连接头脏污或损坏、光纤弯折过度或熔接不良。",
		FixZH:     "清洁两端SC/APC连接头后重新插好，理顺过度弯折，再次测量。",
		Evidence:  []string{"optical Rx power = −26.1 dBm"},
	}
	c := &Completion{
		OrderID: "WO-20250314-0042", Result: ResultSuccess, Technician: "wang.wei",
		Device: drivers.Identity{Kind: drivers.KindE8, Vendor: "ZTE", Model: "ZXHN F650", Serial: "ZTEGC8A1B2C3",
			Firmware: "V6.0.10P2N5", Access: "gpon", Class: "e8-C"},
		WAN: drivers.WANStatus{Instance: "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.1.",
			ConnectionType: "IP_Routed", Status: "Connected", ExternalIP: "100.64.12.34", NAT: true},
		LOID:       &LOID{Registered: true, Status: "0", Result: "1"},
		Readings:   []Reading{{Step: "speed_test", Name: "download_mbps", Value: 312.4, Unit: "Mbit/s", At: at(10, 30)}},
		Steps:      []Step{{Name: "identify", State: "done", StartedAt: at(9, 10), FinishedAt: at(9, 11)}},
		StartedAt:  at(9, 10),
		FinishedAt: at(10, 47),
		Agent:      "fieldagent v0.1.0",
		OrderType:  "new_install",
		Customer:   &Customer{Name: "李娜", Address: "上海市浦东新区张江路 88 弄 6 号 1201 室", Phone: "138 1234 5678"},
		OtherDevices: []drivers.Identity{{Kind: drivers.KindITV, Vendor: "Huawei", Model: "EC6108V9",
			Serial: "HWEC61080042", Firmware: "V100R003C30"}},
		PPPoEAccount: "02112345678",
		Package:      Package{DownMbps: 300, UpMbps: 50},
		Speed: []SpeedSample{
			{Kind: SpeedLaptopDown, Mbps: 312.4}, {Kind: SpeedGatewayDown, Mbps: 296.8}, {Kind: SpeedLaptopUp, Mbps: 41.2},
		},
		Verdict: &Verdict{Profile: "ct-gpon", Status: StatusFail,
			Checks: []Check{
				{Name: "optical Rx power", Reading: "optical_rx_power_dbm", Value: -19.4, Unit: "dBm", Status: StatusOK, Limit: "−27 … −8 dBm (warn below −25)"},
				{Name: "download speed", Reading: "download_mbps", Value: 312.4, Unit: "Mbit/s", Status: StatusOK, Limit: "≥ 270 Mbit/s (90% of 300)"},
				{Name: "gateway download speed", Reading: "gateway_download_mbps", Value: 296.8, Unit: "Mbit/s", Status: StatusOK, Limit: "≥ 270 Mbit/s (90% of 300)"},
				{Name: "upload speed", Reading: "upload_mbps", Value: 41.2, Unit: "Mbit/s", Status: StatusFail, Limit: "≥ 45 Mbit/s (90% of 50)"},
				{Name: "LAN2 link speed", Reading: "lan2_speed_mbps", Value: 100, Unit: "Mbit/s", Status: StatusWarn, Limit: "≥ 1000 Mbit/s"},
				{Name: "iptv probe", Status: StatusSkip, Limit: "completes without error", Detail: "no multicast group configured"},
			},
			Findings: []Finding{{
				Code: "SPEED_BELOW_PACKAGE", Severity: StatusFail,
				Symptom:   "The speed test is below the package.",
				Cause:     "Without the gateway's own upload test it is not known whether the line or the home network is slow.",
				Fix:       "Run the gateway's speed test (TR-143) and a wired test on LAN1.",
				SymptomZH: "测速低于签约速率。",
				CauseZH:   "缺少网关自身上传测速结果，无法判断是线路慢还是户内网络慢。",
				FixZH:     "运行网关测速（TR-143）并用网线接LAN1测速。",
			}},
		},
		Fixes:      []Fix{{Code: "OPTICAL_RX_LOW", Finding: opticalLow, Action: "重新熔接入户光纤，清洁光接口 (re-spliced the drop fibre)", Retest: StatusOK, At: at(9, 58)}},
		ArrivedAt:  at(9, 2),
		Acceptance: &Acceptance{Name: "李娜", Comment: "安装很快，师傅很专业。", At: at(10, 52), Accepted: true},
	}
	c.SetTimeLimit(90 * time.Minute)
	return c
}

func render(t *testing.T, c *Completion, lang Lang) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteHTML(&b, lang); err != nil {
		t.Fatalf("WriteHTML(%s): %v", lang, err)
	}
	return b.String()
}

func TestWriteHTMLGolden(t *testing.T) {
	for _, lang := range []Lang{English, Chinese, Bilingual} {
		t.Run(string(lang), func(t *testing.T) {
			got := render(t, sample(), lang)
			wellFormed(t, got)
			path := filepath.Join("testdata", "completion-"+string(lang)+".golden.html")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("page differs from %s (go test -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

// TestWriteHTMLContent checks what the page says in each language, beyond
// the golden files' exact bytes.
func TestWriteHTMLContent(t *testing.T) {
	for _, tc := range []struct {
		lang       Lang
		htmlLang   string
		want, nots []string
	}{
		{English, `lang="en"`,
			[]string{"Completion report", "China Telecom", "New installation", "Equipment installed", "e8 home gateway", "iTV set-top box",
				"ZTEGC8A1B2C3", "GPON", "e8-C", "300 Mbit/s down, 50 Mbit/s up", "02112345678", "Speed test", "Laptop download",
				"Line readings", "LAN2 link speed", "Faults found and fixed", "The optical receive power is too low.", "re-spliced",
				"Passed", "Not fixed", "≥ 45 Mbit/s (90% of 50)", "over by 15 min", "1 h 45 min", "Accepted by the customer", "安装很快", "2025-03-14 10:52", "****5678"},
			[]string{"竣工报告", "光猫收光功率偏低", "Customer signature"}},
		{Chinese, `lang="zh-CN"`,
			[]string{"竣工报告", "中国电信", "新装", "安装设备", "e8 家庭网关", "iTV 机顶盒", "签约带宽", "下行 300 Mbit/s，上行 50 Mbit/s",
				"测速结果", "电脑下载", "网关下载", "电脑上传", "线路检测", "光接收功率", "LAN2 口速率", "故障及处理", "光猫收光功率偏低。",
				"复测合格", "未处理", "超时 15 分钟", "1 小时 45 分钟", "客户确认", "客户已确认验收", "****5678", "总体结论：",
				"−27 … −8 dBm（低于 −25 告警）", "≥ 45 Mbit/s（签约 50 的 90%）", "测试正常完成"},
			[]string{"Completion report", "The optical receive power is too low.", "Laptop download", "warn below", "of 50"}},
		{Bilingual, `lang="zh-CN"`,
			[]string{"竣工报告", `<span class="en">Completion report</span>`, "光猫收光功率偏低。", "The optical receive power is too low.",
				"签约带宽 Package 300", "超时 15 分钟", "over by 15 min"},
			nil},
	} {
		t.Run(string(tc.lang), func(t *testing.T) {
			got := render(t, sample(), tc.lang)
			for _, w := range append(tc.want, tc.htmlLang) {
				if !strings.Contains(got, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.nots {
				if strings.Contains(got, n) {
					t.Errorf("page has %q, which is not in its language", n)
				}
			}
			if strings.Contains(got, "1234 5678") || strings.Contains(got, "13812345678") {
				t.Error("page shows the whole phone number")
			}
			// Self-contained: no scripts, nothing fetched.
			for _, n := range []string{"<script", "src=", "href=", "@import", "url("} {
				if strings.Contains(got, n) {
					t.Errorf("page has %q: it must not load anything", n)
				}
			}
			if !strings.Contains(got, "@media print") || !strings.Contains(got, "size: A4") {
				t.Error("page has no A4 print stylesheet")
			}
		})
	}
}

// TestWriteHTMLConcurrent renders from many goroutines at once (run with
// -race): the shared template is only cloned.
func TestWriteHTMLConcurrent(t *testing.T) {
	want := render(t, sample(), Bilingual)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var b bytes.Buffer
			err := sample().WriteHTML(&b, Bilingual)
			if err == nil && b.String() != want {
				err = errors.New("a concurrent render differs")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestWriteHTMLUnknownLang(t *testing.T) {
	var b bytes.Buffer
	err := sample().WriteHTML(&b, "fr")
	if !errors.Is(err, ErrUnknownLang) || b.Len() != 0 {
		t.Errorf("WriteHTML(fr) = %v with %d bytes written, want ErrUnknownLang and nothing", err, b.Len())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteHTMLWriteError(t *testing.T) {
	if err := sample().WriteHTML(failWriter{}, English); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("WriteHTML to a failing writer = %v, want its error", err)
	}
}

func TestWriteHTMLEscapes(t *testing.T) {
	c := sample()
	c.Customer.Name = `<script>alert("x")</script>`
	c.Customer.Address = `<img src=x onerror=alert(1)>`
	c.Acceptance.Comment = `</td></tr></table><b>bold</b>`
	c.Acceptance.Name = `"><script>alert(2)</script>`
	c.Fixes[0].Action = `<iframe src="https://evil.example">`
	c.Device.Serial = `SN"onmouseover="alert(3)`
	c.Speed = append(c.Speed, SpeedSample{Kind: `"/><script>alert(4)</script>`, Mbps: 1})
	c.Verdict.Checks[0].Detail = `<svg onload=alert(5)>`
	for _, lang := range []Lang{English, Chinese, Bilingual} {
		got := render(t, c, lang)
		for _, bad := range []string{"<script", "<img", "<iframe", "<b>", "onmouseover=\"", "<svg onload"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s: page has %q unescaped", lang, bad)
			}
		}
		for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;b&gt;bold&lt;/b&gt;"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: page lacks the escaped %q", lang, want)
			}
		}
		wellFormed(t, got)
	}
}

// TestNoSecrets builds a completion from an order that carries every kind
// of credential and checks that none reaches the page, the text or the
// JSON.
func TestNoSecrets(t *testing.T) {
	secrets := []string{"pppoe-Pa55word!", "LOID-0042-SECRET", "loidpw9876", "iptv-S3cr3t"}
	o := &order.Order{
		ID: "WO-7", Type: order.TypeNewInstall, Technician: "wang.wei",
		Customer: order.Customer{Name: "张伟", Phone: "+86 139-8765-4321", Address: "北京市海淀区中关村大街 1 号"},
		Services: []order.Service{{Device: order.DeviceITV, Access: order.AccessGPON}, {Device: order.DeviceE8, Access: order.AccessGPON, BandwidthMbps: 500}},
		PPPoE:    order.Account{Username: "010pppoe7", Password: secret.New(secrets[0])},
		LOID:     order.LOIDCredential{LOID: secret.New(secrets[1]), Password: secret.New(secrets[2])},
		IPTV:     order.IPTVAccount{Account: "iptv7", Password: secret.New(secrets[3])},
	}
	c := sample()
	c.Technician = ""
	c.Package = Package{}
	c.SetOrder(o)
	if c.OrderID != "WO-7" || c.OrderType != "new_install" || c.Technician != "wang.wei" || c.PPPoEAccount != "010pppoe7" ||
		c.Customer.Name != "张伟" || c.Package.DownMbps != 500 {
		t.Fatalf("SetOrder: %+v", c)
	}
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := c.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"json": string(js), "text": text.String()}
	for _, lang := range []Lang{English, Chinese, Bilingual} {
		outputs["html "+string(lang)] = render(t, c, lang)
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains the secret %q", name, s)
			}
		}
	}
	if !strings.Contains(outputs["html zh"], "010pppoe7") || !strings.Contains(outputs["html zh"], "****4321") {
		t.Error("page lacks the PPPoE account name or the masked phone")
	}
}

// wellFormed checks that page parses as HTML with a title and a body, and
// that every element the template opens is closed in order.
func wellFormed(t *testing.T, page string) {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") {
		t.Errorf("page does not start with a doctype: %.40q", page)
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if find(doc, "title", nil) == nil || find(doc, "body", nil) == nil || find(doc, "style", nil) == nil {
		t.Error("page lacks its title, style or body")
	}
	void := map[string]bool{"meta": true, "br": true, "img": true, "hr": true, "link": true, "input": true}
	var stack []string
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("tokenize: %v", z.Err())
			}
			if len(stack) > 0 {
				t.Errorf("elements left open: %v", stack)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !void[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// find returns the first element named tag under n for which match (if
// set) holds.
func find(n *html.Node, tag string, match func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && n.Data == tag && (match == nil || match(n)) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, tag, match); f != nil {
			return f
		}
	}
	return nil
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	if n.Type == html.ElementNode && n.Data == tag {
		out = append(out, n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, findAll(c, tag)...)
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func fattr(t *testing.T, n *html.Node, key string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(attr(n, key), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.Data, key, attr(n, key), err)
	}
	return v
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// TestChartGeometry reads the chart back from the page: in each panel the
// bars stand on one baseline with heights proportional to the values, and
// the package line and the pass-mark line sit at the package rate and at
// MinRatio of it on the same scale.
func TestChartGeometry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		speed []SpeedSample
		pkg   Package
		// want are the bars by direction, in order.
		want map[string][]SpeedSample
		rate map[string]float64
	}{
		{"asymmetric package", sample().Speed, Package{DownMbps: 300, UpMbps: 50},
			map[string][]SpeedSample{
				"download": {{SpeedLaptopDown, 312.4}, {SpeedGatewayDown, 296.8}},
				"upload":   {{SpeedLaptopUp, 41.2}},
			}, map[string]float64{"download": 300, "upload": 50}},
		{"slow line, custom ratio", []SpeedSample{{SpeedGatewayDown, 80}, {SpeedLaptopDown, 45.5}, {SpeedGatewayUp, 0}},
			Package{DownMbps: 1000, UpMbps: 100, MinRatio: 0.8},
			map[string][]SpeedSample{
				"download": {{SpeedGatewayDown, 80}, {SpeedLaptopDown, 45.5}},
				"upload":   {{SpeedGatewayUp, 0}},
			}, map[string]float64{"download": 1000, "upload": 100}},
		{"package unknown", []SpeedSample{{SpeedLaptopDown, 94.1}, {"unknown_kind", 3}},
			Package{},
			map[string][]SpeedSample{"download": {{SpeedLaptopDown, 94.1}}}, map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Completion{OrderID: "WO-1", Speed: tc.speed, Package: tc.pkg}
			doc, err := html.Parse(strings.NewReader(render(t, c, Chinese)))
			if err != nil {
				t.Fatal(err)
			}
			svg := find(doc, "svg", nil)
			if svg == nil {
				t.Fatal("no chart")
			}
			panels := map[string]*html.Node{}
			for _, g := range findAll(svg, "g") {
				if hasClass(g, "panel") {
					panels[attr(g, "data-direction")] = g
				}
			}
			if len(panels) != len(tc.want) {
				t.Errorf("%d panels, want %d", len(panels), len(tc.want))
			}
			for dir, want := range tc.want {
				g := panels[dir]
				if g == nil {
					t.Fatalf("no %s panel", dir)
				}
				var bars []*html.Node
				for _, r := range findAll(g, "rect") {
					if hasClass(r, "bar") {
						bars = append(bars, r)
					}
				}
				if len(bars) != len(want) {
					t.Fatalf("%s: %d bars, want %d", dir, len(bars), len(want))
				}
				var base float64
				var grid, ticks []*html.Node
				for _, l := range findAll(g, "line") {
					switch {
					case hasClass(l, "base"):
						base = fattr(t, l, "y1")
					case hasClass(l, "grid"):
						grid = append(grid, l)
					}
				}
				for _, x := range findAll(g, "text") {
					if hasClass(x, "tick") {
						ticks = append(ticks, x)
					}
				}
				// The scale (SVG units per Mbit/s) comes from the top grid
				// line and its label; every grid line, bar and package line
				// must agree with it.
				if len(grid) < 2 || len(grid) != len(ticks) {
					t.Fatalf("%s: %d grid lines and %d scale labels", dir, len(grid), len(ticks))
				}
				label := func(i int) float64 {
					v, err := strconv.ParseFloat(ticks[i].FirstChild.Data, 64)
					if err != nil {
						t.Fatalf("scale label: %v", err)
					}
					return v
				}
				top := len(grid) - 1
				scale := (base - fattr(t, grid[top], "y1")) / label(top)
				for i := range grid {
					if y, want := fattr(t, grid[i], "y1"), base-label(i)*scale; math.Abs(y-want) > 0.11 {
						t.Errorf("%s grid line %v at y=%v, want %v", dir, label(i), y, want)
					}
				}
				for i, b := range bars {
					if attr(b, "data-kind") != want[i].Kind {
						t.Errorf("%s bar %d is %s, want %s", dir, i, attr(b, "data-kind"), want[i].Kind)
					}
					y, h := fattr(t, b, "y"), fattr(t, b, "height")
					if math.Abs(y+h-base) > 0.11 {
						t.Errorf("%s bar %d ends at %v, baseline is %v", dir, i, y+h, base)
					}
					if math.Abs(h-want[i].Mbps*scale) > 0.11 {
						t.Errorf("%s bar %d (%v Mbit/s) is %v high, want %v", dir, i, want[i].Mbps, h, want[i].Mbps*scale)
					}
					if y < fattr(t, grid[top], "y1") {
						t.Errorf("%s bar %d rises above the scale", dir, i)
					}
				}
				rate := tc.rate[dir]
				lines := map[string]float64{}
				for _, l := range findAll(g, "line") {
					for _, cls := range []string{"pkg", "min"} {
						if hasClass(l, cls) {
							if y1, y2 := fattr(t, l, "y1"), fattr(t, l, "y2"); y1 != y2 {
								t.Errorf("%s %s line is not level: %v, %v", dir, cls, y1, y2)
							}
							lines[cls] = fattr(t, l, "y1")
						}
					}
				}
				if rate == 0 {
					if len(lines) != 0 {
						t.Errorf("%s: package lines %v without a package rate", dir, lines)
					}
					continue
				}
				if want := base - rate*scale; math.Abs(lines["pkg"]-want) > 0.11 {
					t.Errorf("%s package line at y=%v, want %v (%v Mbit/s)", dir, lines["pkg"], want, rate)
				}
				if want := base - rate*tc.pkg.ratio()*scale; math.Abs(lines["min"]-want) > 0.11 {
					t.Errorf("%s pass-mark line at y=%v, want %v", dir, lines["min"], want)
				}
				if lines["pkg"] < fattr(t, grid[top], "y1") {
					t.Errorf("%s package line above the scale", dir)
				}
			}
		})
	}
}

func TestScaleTop(t *testing.T) {
	for _, tc := range []struct{ max, want float64 }{
		{300, 320}, {1000, 1200}, {50, 60}, {41.2, 48}, {0, 100}, {2500, 3200}, {0.4, 0.48},
	} {
		if got := scaleTop(tc.max); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("scaleTop(%v) = %v, want %v", tc.max, got, tc.want)
		}
	}
}

// TestWriteHTMLEmpty renders a completion with nothing in it: the page is
// still a whole document that says what is missing.
func TestWriteHTMLEmpty(t *testing.T) {
	for _, lang := range []Lang{English, Chinese, Bilingual} {
		got := render(t, &Completion{}, lang)
		wellFormed(t, got)
		doc, _ := html.Parse(strings.NewReader(got))
		if find(doc, "svg", nil) != nil {
			t.Errorf("%s: chart without a speed test", lang)
		}
		want := map[Lang][]string{
			English:   {"No speed test was run", "No faults found", "No device recorded", "No readings", "Customer signature", "Not completed"},
			Chinese:   {"本次未测速", "未发现故障", "未记录安装设备", "无检测数据", "客户签字", "未完成"},
			Bilingual: {"本次未测速", "No speed test was run", "客户签字"},
		}[lang]
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: empty page lacks %q", lang, w)
			}
		}
	}
}

// TestSpeedFromReadings: without Speed the chart takes the readings.
func TestSpeedFromReadings(t *testing.T) {
	rs := []Reading{{Name: "ping_loss"}, {Name: "download_mbps", Value: 90}, {Name: "gateway_download_mbps", Value: 95}, {Name: "upload_mbps", Value: 9}}
	got := SpeedFromReadings(rs)
	want := []SpeedSample{{SpeedLaptopDown, 90}, {SpeedGatewayDown, 95}, {SpeedLaptopUp, 9}}
	if len(got) != len(want) {
		t.Fatalf("SpeedFromReadings = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sample %d = %v, want %v", i, got[i], want[i])
		}
	}
	page := render(t, &Completion{Readings: rs, Package: Package{DownMbps: 100}}, English)
	if !strings.Contains(page, `data-kind="gateway_download"`) || !strings.Contains(page, ">95<") {
		t.Error("the chart does not show the speed readings")
	}
	if !strings.Contains(page, "Dashed line: the package rate") {
		t.Error("the chart's lines are not explained")
	}
	if page := render(t, &Completion{Readings: rs}, English); strings.Contains(page, "Dashed line") {
		t.Error("the note explains package lines that a chart without a package does not have")
	}
}

func TestFromVerdict(t *testing.T) {
	r := verdict.Report{Profile: "ct-gpon", Status: verdict.StatusWarn,
		Checks: []verdict.Check{
			{Name: "optical Rx power", Reading: "optical_rx_power_dbm", Value: -25.5, Unit: "dBm", Status: verdict.StatusWarn, Limit: "−27 … −8 dBm", Probe: "line"},
			{Name: "download speed", Reading: "download_mbps", Value: math.NaN(), Status: verdict.StatusSkip, Detail: "not a number"},
		},
		Findings: []verdict.Finding{{Code: verdict.CodeOpticalRxLow, Severity: verdict.StatusWarn, Symptom: "low", SymptomZH: "偏低", FixZH: "清洁", Evidence: []string{"e"}}},
	}
	v := FromVerdict(r)
	if v.Profile != "ct-gpon" || v.Status != StatusWarn || len(v.Checks) != 2 || len(v.Findings) != 1 {
		t.Fatalf("FromVerdict = %+v", v)
	}
	if c := v.Checks[0]; c.Value != -25.5 || c.Status != StatusWarn || c.Limit != "−27 … −8 dBm" || c.Reading != "optical_rx_power_dbm" {
		t.Errorf("check = %+v", c)
	}
	if v.Checks[1].Value != 0 {
		t.Errorf("NaN value copied as %v, want 0", v.Checks[1].Value)
	}
	if f := v.Findings[0]; f.Code != "OPTICAL_RX_LOW" || f.SymptomZH != "偏低" || f.FixZH != "清洁" || f.Evidence[0] != "e" {
		t.Errorf("finding = %+v", f)
	}
	r.Findings[0].Evidence[0] = "changed"
	if v.Findings[0].Evidence[0] != "e" {
		t.Error("FromVerdict shares the evidence slice with the verdict")
	}
	js, err := json.Marshal(&Completion{Verdict: v})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"verdict":{"profile":"ct-gpon","status":"warn"`, `"status":"skip"`, `"symptom_zh":"偏低"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
}

func TestSetTimeLimit(t *testing.T) {
	for _, tc := range []struct {
		name           string
		arrived, start time.Time
		finished       time.Time
		limit          time.Duration
		elapsed        time.Duration
		overrun        bool
	}{
		{"from arrival, over", at(9, 0), at(9, 10), at(10, 40), 90 * time.Minute, 100 * time.Minute, true},
		{"exactly at the limit", at(9, 0), at(9, 10), at(10, 30), 90 * time.Minute, 90 * time.Minute, false},
		{"no arrival: from the start", time.Time{}, at(9, 10), at(10, 0), time.Hour, 50 * time.Minute, false},
		{"no limit", at(9, 0), time.Time{}, at(12, 0), 0, 3 * time.Hour, false},
		{"not finished", at(9, 0), at(9, 10), time.Time{}, time.Hour, 0, false},
		{"clock went back", at(11, 0), time.Time{}, at(10, 0), time.Hour, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Completion{ArrivedAt: tc.arrived, StartedAt: tc.start, FinishedAt: tc.finished}
			c.SetTimeLimit(tc.limit)
			if c.TimeLimit != tc.limit || c.Elapsed != tc.elapsed || c.Overrun != tc.overrun {
				t.Errorf("limit %v elapsed %v overrun %v, want %v %v %v", c.TimeLimit, c.Elapsed, c.Overrun, tc.limit, tc.elapsed, tc.overrun)
			}
		})
	}
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"13812345678": "****5678", "+86 139-8765-4321": "****4321", "1234": "****", "": "", "call me": "****",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		en, zh string
	}{
		{45 * time.Second, "45 s", "45 秒"}, {15 * time.Minute, "15 min", "15 分钟"}, {2 * time.Hour, "2 h", "2 小时"},
		{105*time.Minute + 20*time.Second, "1 h 45 min", "1 小时 45 分钟"},
	} {
		if en, zh := durationEN(tc.d), durationZH(tc.d); en != tc.en || zh != tc.zh {
			t.Errorf("duration %v = %q / %q, want %q / %q", tc.d, en, zh, tc.en, tc.zh)
		}
	}
}
