package nbisim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleDoc() map[string]any {
	leaf := func(v any, typ string) map[string]any {
		return map[string]any{"_object": false, "_type": typ, "_value": v, "_timestamp": time.Date(2026, 11, 25, 17, 4, 29, 171e6, time.UTC)}
	}
	return map[string]any{
		"_id":         "00D0D0-F650-FLT1",
		"_deviceId":   map[string]any{"_OUI": "00D0D0", "_ProductClass": "F650", "_SerialNumber": "FLT1", "_Manufacturer": "ZTE"},
		"_lastInform": time.Date(2026, 11, 25, 17, 4, 29, 170e6, time.UTC),
		"_tags":       []string{"a", "fieldagent-diagnosed"},
		"InternetGatewayDevice": map[string]any{
			"_object": true,
			"DeviceInfo": map[string]any{
				"_object":         true,
				"HardwareVersion": leaf("40501", "xsd:string"),
				"UpTime":          leaf(json.Number("213138"), "xsd:unsignedInt"),
				"Description":     map[string]any{"_object": false, "_writable": false},
			},
		},
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name, query string
		want        bool
	}{
		{"empty", ``, true},
		{"all", `{}`, true},
		{"id", `{"_id":"00D0D0-F650-FLT1"}`, true},
		{"id other", `{"_id":"x"}`, false},
		{"serial", `{"_deviceId._SerialNumber":"FLT1"}`, true},
		{"alias not mapped", `{"DeviceID.SerialNumber":"FLT1"}`, false},
		{"product class and oui", `{"_deviceId._ProductClass":"F650","_deviceId._OUI":"00D0D0"}`, true},
		{"tag", `{"_tags":"fieldagent-diagnosed"}`, true},
		{"tag missing", `{"_tags":"nope"}`, false},
		{"param bare", `{"InternetGatewayDevice.DeviceInfo.HardwareVersion":"40501"}`, true},
		{"param _value", `{"InternetGatewayDevice.DeviceInfo.HardwareVersion._value":"40501"}`, true},
		{"number as string", `{"InternetGatewayDevice.DeviceInfo.UpTime":"213138"}`, true},
		{"number", `{"InternetGatewayDevice.DeviceInfo.UpTime":213138}`, true},
		{"number gt", `{"InternetGatewayDevice.DeviceInfo.UpTime":{"$gt":1000}}`, true},
		{"leaf without value", `{"InternetGatewayDevice.DeviceInfo.Description":null}`, true},
		{"in", `{"_deviceId._SerialNumber":{"$in":["FLT0","FLT1"]}}`, true},
		{"in none", `{"_deviceId._SerialNumber":{"$in":[]}}`, false},
		{"ne", `{"_deviceId._SerialNumber":{"$ne":"FLT1"}}`, false},
		{"ne missing field", `{"_deviceId._Nope":{"$ne":"x"}}`, true},
		{"regex prefix", `{"_deviceId._SerialNumber":{"$regex":"^FLT"}}`, true},
		{"regex i", `{"_deviceId._SerialNumber":{"$regex":"^flt","$options":"i"}}`, true},
		{"regex tags", `{"_tags":{"$regex":"^fieldagent-"}}`, true},
		{"lastInform gte iso", `{"_lastInform":{"$gte":"2026-11-25T17:04:29.170Z"}}`, true},
		{"lastInform gt iso", `{"_lastInform":{"$gt":"2026-11-25T17:04:29.170Z"}}`, false},
		{"lastInform lt ms", `{"_lastInform":{"$lt":1795626269171}}`, true},
		{"lastInform date only", `{"_lastInform":{"$gte":"2026-11-25","$lt":"2026-11-26"}}`, true},
		{"and", `{"$and":[{"_tags":"a"},{"_deviceId._OUI":"00D0D0"}]}`, true},
		{"or", `{"$or":[{"_tags":"x"},{"_deviceId._OUI":"00D0D0"}]}`, true},
		{"or none", `{"$or":[{"_tags":"x"},{"_deviceId._OUI":"y"}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := parseFilter(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := p(sampleDoc()); got != tc.want {
				t.Errorf("%s matches = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	tests := []struct{ query, want string }{
		// Fixture 09's message, word for word.
		{`{not json`, "SyntaxError: Expected property name or '}' in JSON at position 1"},
		{`{"a":1`, "SyntaxError: Unexpected end of JSON input"},
		{`{"a" 1}`, "SyntaxError: Expected ':' after property name in JSON at position 5"},
		{`{"a":1 "b":2}`, "SyntaxError: Expected ',' or '}' after property value in JSON at position 7"},
		{`{"a":1} x`, "SyntaxError: Unexpected non-whitespace character after JSON at position 8"},
		{`{"a":{"$exists":true}}`, "Error: query operator $exists (field a) is not supported"},
		{`{"$where":"1"}`, "Error: query operator $where is not supported"},
		{`{"a":{"b":1}}`, "Error: equality with an object"},
		{`{"a":[1]}`, "Error: equality with an array"},
		{`{"a":{"$regex":"("}}`, "Error: invalid $regex"},
		{`{"$or":{}}`, "Error: $or needs a non-empty array"},
		{`[1]`, "Error: the query must be a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			_, _, err := parseFilter(tc.query)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, ErrQuery) {
				t.Fatalf("parseFilter(%s) = %v, want %q...", tc.query, err, tc.want)
			}
		})
	}
}

func TestSortProjectWindow(t *testing.T) {
	mk := func(id string, sn string) any {
		return map[string]any{"_id": id, "_deviceId": map[string]any{"_SerialNumber": sn}}
	}
	docs := []any{mk("b", "2"), mk("a", "3"), mk("c", "1")}
	keys, err := parseSort(`{"_deviceId._SerialNumber":-1}`)
	if err != nil {
		t.Fatal(err)
	}
	sortDocs(docs, keys)
	var got []string
	for _, d := range window(docs, 1, 1) {
		got = append(got, d.(map[string]any)["_id"].(string))
	}
	if strings.Join(got, ",") != "b" {
		t.Errorf("page = %v, want [b]", got)
	}
	if _, err := parseSort(`{"_id":2}`); err == nil {
		t.Error("sort direction 2 accepted")
	}
	p := project(sampleDoc(), parseProjection("DeviceID,InternetGatewayDevice.DeviceInfo.HardwareVersion,_lastInform"))
	b := string(marshal(p))
	want := `{"_id":"00D0D0-F650-FLT1","InternetGatewayDevice":{"DeviceInfo":{"HardwareVersion":{"_object":false,"_timestamp":"2026-11-25T17:04:29.171Z","_type":"xsd:string","_value":"40501"}}},"_lastInform":"2026-11-25T17:04:29.170Z"}`
	if b != want {
		t.Errorf("projection =\n%s\nwant\n%s", b, want)
	}
}

func TestEncodeOrder(t *testing.T) {
	n := &pnode{object: true}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	n.setValue("X.10.A", "1", "xsd:unsignedInt", ts)
	n.setValue("X.2.B", "true", "xsd:boolean", ts)
	n.setValue("X.2.C", "<&>", "", ts)
	got := string(marshal(map[string]any{"X": n.kids["X"].doc(), "_tags": []string{"t"}, "_id": "d"}))
	want := `{"_id":"d","X":{"2":{"B":{"_object":false,"_timestamp":"2026-01-02T03:04:05.006Z","_type":"xsd:boolean","_value":true},"C":{"_object":false,"_timestamp":"2026-01-02T03:04:05.006Z","_type":"xsd:string","_value":"<&>"},"_object":true},"10":{"A":{"_object":false,"_timestamp":"2026-01-02T03:04:05.006Z","_type":"xsd:unsignedInt","_value":1},"_object":true},"_object":true},"_tags":["t"]}`
	if got != want {
		t.Errorf("encoded\n%s\nwant\n%s", got, want)
	}
}

func TestParseTask(t *testing.T) {
	tk, err := parseTask([]byte(`{"name":"setParameterValues","parameterValues":[["A.B",600,"xsd:unsignedInt"],["A.C",true]],"device":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.values) != 2 || tk.values[0].Value != "600" || tk.values[1].Type != "xsd:boolean" || tk.values[1].Value != "true" {
		t.Errorf("values = %+v", tk.values)
	}
	tk.id, tk.device, tk.ts = "6b071521816002b3b1d27413", "dev", time.Date(2026, 11, 25, 17, 4, 33, 933e6, time.UTC)
	// Fixture 12's answer, member for member.
	want := `{"name":"setParameterValues","parameterValues":[["A.B",600,"xsd:unsignedInt"],["A.C",true]],"device":"dev","timestamp":"2026-11-25T17:04:33.933Z","_id":"6b071521816002b3b1d27413"}`
	if got := string(marshal(tk.posted())); got != want {
		t.Errorf("posted =\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{`{}`, `{"name":"nope"}`, `{"name":"getParameterValues"}`, `{"name":"addObject","objectName":"A.B."}`, `{"name":"download"}`, `[`} {
		if _, err := parseTask([]byte(bad)); err == nil {
			t.Errorf("parseTask(%s) accepted", bad)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{`{}`, `{"_id":"x"}`, `{"$or":[{"a":1},{"b":{"$in":[1,"2"]}}]}`, `{"_lastInform":{"$gt":"2026-01-01"}}`, `{"a":{"$regex":"^x","$options":"i"}}`, `{not json`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, _, err := parseFilter(q)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("error %v does not wrap ErrQuery", err)
			}
			return
		}
		_ = p(sampleDoc())
	})
}
