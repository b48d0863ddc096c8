package exam

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// Languages of WriteHTML.
const (
	English   = "en"
	Chinese   = "zh"
	Bilingual = "both"
)

var sectionNames = map[string][2]string{
	SectionService:    {"Service and process", "服务规范"},
	SectionInstall:    {"Installation", "安装施工"},
	SectionActivation: {"Activation and demo", "开通与演示"},
	SectionFaults:     {"Troubleshooting", "故障处理"},
}

var sheetPage = template.Must(template.New("sheet").Parse(`<!DOCTYPE html>
<html lang="{{.HTMLLang}}"><head><meta charset="utf-8">
<title>{{.T "Skills exam score sheet" "技能考核评分表"}} — {{.S.OrderID}}</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:60em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;padding:.3em .5em;text-align:left}
td.n{text-align:right;white-space:nowrap}.lost{color:#b00}.pass{color:#070;font-weight:bold}.fail{color:#b00;font-weight:bold}
@media print{body{margin:0}}
</style></head><body>
<h1>{{.T "Skills exam score sheet" "技能考核评分表"}}</h1>
<p>{{.T "Scenario" "场景"}}: {{.S.Scenario}} · {{.T "Order" "工单"}}: {{.S.OrderID}} ({{.S.Device}}) · {{.T "Seed" "随机种子"}}: {{.S.Seed}} · {{.T "Candidate" "考生"}}: {{.S.Candidate}}</p>
<table><tr><th>{{.T "Section" "项目"}}</th><th>{{.T "Item" "考核内容"}}</th><th>{{.T "Marks" "得分"}}</th><th>{{.T "Note" "说明"}}</th></tr>
{{range .S.Items}}<tr><td>{{$.Section .Section}}</td><td>{{$.T .Name .NameZH}}</td><td class="n{{if lt .Got .Max}} lost{{end}}">{{$.Num .Got}} / {{$.Num .Max}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
<p>{{.T "Time" "用时"}}: {{.Elapsed}} / {{.Limit}}{{if gt .S.Penalty 0.0}} — {{.T "over the limit by" "超时"}} {{.Overrun}}, −{{.Num .S.Penalty}}{{end}}</p>
<p>{{.T "Score" "总分"}}: <b>{{.Num .S.Total}} / {{.Num .S.Max}}</b> ({{.T "pass mark" "及格线"}} {{.Num .S.PassMark}})
{{if .S.Passed}}<span class="pass">{{.T "PASS" "合格"}}</span>{{else}}<span class="fail">{{.T "FAIL" "不合格"}}</span>{{end}}</p>
</body></html>
`))

type sheetView struct {
	S    *Sheet
	Lang string
}

// T picks the text for the page's language; both gives "zh (en)".
func (v sheetView) T(en, zh string) string {
	switch {
	case v.Lang == English || zh == "":
		return en
	case v.Lang == Chinese:
		return zh
	}
	return zh + " " + en
}

func (v sheetView) Section(s string) string {
	n, ok := sectionNames[s]
	if !ok {
		return s
	}
	return v.T(n[0], n[1])
}

// HTMLLang is the page's lang attribute.
func (v sheetView) HTMLLang() string {
	if v.Lang == English {
		return "en"
	}
	return "zh-CN"
}

func (v sheetView) Num(f float64) string { return num(f) }

func (v sheetView) Elapsed() string {
	return time.Duration(v.S.Elapsed).Round(time.Second).String()
}

func (v sheetView) Limit() string   { return time.Duration(v.S.Limit).String() }
func (v sheetView) Overrun() string { return time.Duration(v.S.Overrun).Round(time.Second).String() }

// WriteHTML writes the sheet as a printable page in English, Chinese or
// both (Bilingual).
func (s *Sheet) WriteHTML(w io.Writer, lang string) error {
	switch lang {
	case English, Chinese, Bilingual:
	default:
		return fmt.Errorf("exam: language %q is not en, zh or both", lang)
	}
	return sheetPage.Execute(w, sheetView{S: s, Lang: lang})
}
