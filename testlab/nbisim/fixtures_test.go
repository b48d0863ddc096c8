package nbisim_test

// Answers of nbisim compared in shape with GenieACS's recorded ones
// (tr069/genieacs/testdata/nbi): status, reason phrase, header names, and
// the members of the JSON body (values belong to each run).

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"fieldagent/testlab/nbisim"
	"fieldagent/tr069/genieacs"
)

const fixtureDir = "../../tr069/genieacs/testdata/nbi"

type fixture struct {
	Response struct {
		Status  int               `json:"status"`
		Reason  string            `json:"reason"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"response"`
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// shape is a JSON value's structure: members of objects (recursively),
// the shape of an array's first element, the JSON type of scalars.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		return "[" + shape(x[0]) + "]"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// compareShape checks that resp/body have the status, reason phrase,
// header names and body shape of the recorded answer.
func compareShape(t *testing.T, name string, resp *http.Response, body string) {
	t.Helper()
	f := loadFixture(t, name)
	if resp.StatusCode != f.Response.Status || reason(resp) != f.Response.Reason {
		t.Errorf("%s: status %q, recorded %d %s", name, resp.Status, f.Response.Status, f.Response.Reason)
	}
	for h := range f.Response.Headers {
		if _, ok := resp.Header[http.CanonicalHeaderKey(h)]; !ok {
			t.Errorf("%s: no %s header", name, h)
		}
	}
	if _, ok := f.Response.Headers["Content-Type"]; !ok && resp.Header.Get("Content-Type") != "" {
		t.Errorf("%s: Content-Type %q where GenieACS sends none", name, resp.Header.Get("Content-Type"))
	}
	var want any
	_ = json.Unmarshal(f.Response.Body, &want)
	if ws, ok := want.(string); ok {
		if ws != "" && !strings.HasPrefix(body, strings.SplitN(ws, ":", 2)[0]) {
			t.Errorf("%s: body %q, recorded %q", name, body, ws)
		}
		if ws == "" && body != "" {
			t.Errorf("%s: body %q, recorded none", name, body)
		}
		return
	}
	var got any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Errorf("%s: body is not JSON: %v: %q", name, err, body)
		return
	}
	if shape(got) != shape(want) {
		t.Errorf("%s: body shape\n%s\nrecorded\n%s", name, shape(got), shape(want))
	}
	if strings.HasPrefix(body, "[") && !(strings.HasPrefix(body, "[\n") && strings.HasSuffix(body, "\n]")) {
		t.Errorf("%s: list not streamed as GenieACS does: %q", name, body)
	}
}

// rawConn sends req on a fresh TCP connection and returns the status
// line as it came.
func statusLine(t *testing.T, base, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := c.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestFixtureShapes(t *testing.T) {
	s := startSim(t, 2, nbisim.Options{})
	id := s.fleet.DeviceID(0)
	q := func(v string) string { return strings.ReplaceAll(queryEscape(v), "+", "%20") }
	jsonCT := map[string]string{"Content-Type": "application/json"}

	// Lists and documents.
	resp, body := s.raw(t, http.MethodGet, "/devices/?query="+q(`{"_id":"`+id+`"}`)+"&projection=DeviceID,InternetGatewayDevice.DeviceInfo.SoftwareVersion,_lastInform", nil, "")
	compareShape(t, "02-devices-get-by-id-projection.json", resp, body)
	resp, body = s.raw(t, http.MethodHead, "/devices/?query="+q(`{"InternetGatewayDevice.DeviceInfo.HardwareVersion":"V1.0"}`), nil, "")
	compareShape(t, "04-devices-count-head.json", resp, body)
	if resp.Header.Get("total") != "2" {
		t.Errorf("HEAD total = %q, want 2", resp.Header.Get("total"))
	}
	resp, body = s.raw(t, http.MethodGet, "/devices/?query=%7B%7D&projection=_id,_lastInform&sort="+q(`{"_id":1}`)+"&skip=1&limit=1", nil, "")
	compareShape(t, "05-devices-paging-skip-limit.json", resp, body)
	resp, body = s.raw(t, http.MethodGet, "/devices/?query="+q(`{"DeviceID.SerialNumber":"FLT1"}`), nil, "")
	compareShape(t, "07-devices-query-deviceid-alias.json", resp, body)
	if body != "[\n\n]" {
		t.Errorf("empty list = %q, want the 4 bytes GenieACS streams", body)
	}
	resp, body = s.raw(t, http.MethodGet, "/devices/?query=%7Bnot%20json", nil, "")
	compareShape(t, "09-devices-query-invalid-json.json", resp, body)
	if body != "SyntaxError: Expected property name or '}' in JSON at position 1" {
		t.Errorf("invalid JSON body = %q", body)
	}

	// Tasks: done, then read back.
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", jsonCT,
		`{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.DeviceInfo.UpTime","InternetGatewayDevice.ManagementServer.PeriodicInformInterval","InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries"]}`)
	compareShape(t, "10-task-get-parameter-values.json", resp, body)
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", jsonCT,
		`{"name":"setParameterValues","parameterValues":[["InternetGatewayDevice.ManagementServer.PeriodicInformInterval",600,"xsd:unsignedInt"]]}`)
	compareShape(t, "12-task-set-parameter-values.json", resp, body)
	_, body = s.raw(t, http.MethodGet, "/devices/?query="+q(`{"_id":"`+id+`"}`)+"&projection=InternetGatewayDevice.ManagementServer.PeriodicInformInterval", nil, "")
	if !strings.Contains(body, `"PeriodicInformInterval":{"_object":false,"_timestamp":"`) || !strings.Contains(body, `"_type":"xsd:unsignedInt","_value":600`) {
		t.Errorf("read-back after setParameterValues: %s", body)
	}
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", jsonCT,
		`{"name":"refreshObject","objectName":"InternetGatewayDevice.WANDevice.1"}`)
	compareShape(t, "14-task-refresh-object.json", resp, body)

	// A faulted task, its fault, its listing, deletion (20-24).
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", jsonCT,
		`{"name":"setParameterValues","parameterValues":[["InternetGatewayDevice.DeviceInfo.UpTime",1,"xsd:unsignedInt"]]}`)
	if resp.StatusCode != 202 || reason(resp) != "Task faulted" {
		t.Fatalf("faulted task: %s %s", resp.Status, body)
	}
	var task struct {
		ID string `json:"_id"`
	}
	_ = json.Unmarshal([]byte(body), &task)
	if len(task.ID) != 24 {
		t.Errorf("task id %q is not an ObjectId", task.ID)
	}
	resp, body = s.raw(t, http.MethodGet, "/faults/", nil, "")
	var faults []map[string]any
	_ = json.Unmarshal([]byte(body), &faults)
	if len(faults) != 1 || faults[0]["_id"] != id+":task_"+task.ID || faults[0]["code"] != "cwmp.9003" && faults[0]["code"] != "cwmp.9008" {
		t.Errorf("faults = %s", body)
	}
	if p, _ := faults[0]["provisions"].(string); !strings.HasPrefix(p, `[["value","InternetGatewayDevice.DeviceInfo.UpTime",1]]`) {
		t.Errorf("provisions = %q, want the JSON text of the task's provisions", p)
	}
	// The shape of 21, but setParameterValuesFault is a list here (the
	// recorded fault, a Reboot's, had none).
	if d, ok := faults[0]["detail"].(map[string]any); ok {
		d["setParameterValuesFault"] = nil
	}
	fb, _ := json.Marshal(faults)
	compareShape(t, "21-faults-list.json", resp, "[\n"+strings.TrimSuffix(strings.TrimPrefix(string(fb), "["), "]")+"\n]")
	resp, body = s.raw(t, http.MethodGet, "/tasks/?query="+q(`{"device":"`+id+`"}`), nil, "")
	if !strings.Contains(body, `"name":"setParameterValues"`) || resp.Header.Get("total") != "1" {
		t.Errorf("tasks of the device: %s", body)
	}
	resp, body = s.raw(t, http.MethodDelete, "/faults/"+strings.ReplaceAll(id+":task_"+task.ID, ":", "%3A"), nil, "")
	compareShape(t, "23-fault-delete.json", resp, body)
	resp, body = s.raw(t, http.MethodDelete, "/tasks/"+task.ID, nil, "")
	compareShape(t, "24-task-delete-after-fault-delete.json", resp, body)

	// Queued without a connection request, listed, deleted (25-27).
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks", jsonCT, `{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.DeviceInfo.UpTime"]}`)
	compareShape(t, "25-task-queue-without-connection-request.json", resp, body)
	_ = json.Unmarshal([]byte(body), &task)
	resp, body = s.raw(t, http.MethodGet, "/tasks/?query="+q(`{"device":"`+id+`"}`), nil, "")
	compareShape(t, "26-tasks-list-queued.json", resp, body)
	if !strings.HasPrefix(body, "[\n{\"_id\":\""+task.ID+"\",\"name\":") {
		t.Errorf("listed task does not start with _id, name: %s", body)
	}
	resp, body = s.raw(t, http.MethodDelete, "/tasks/"+task.ID, nil, "")
	compareShape(t, "27-task-delete.json", resp, body)
	resp, body = s.raw(t, http.MethodPost, "/devices/00D0D0-F650-NOPE/tasks?connection_request&timeout=3000", jsonCT, `{"name":"getParameterValues","parameterNames":["X.Y"]}`)
	compareShape(t, "28-task-unknown-device.json", resp, body)
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=0", jsonCT, `{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.DeviceInfo.UpTime"]}`)
	compareShape(t, "29-task-timeout-zero.json", resp, body)
	waitNoTasks(t, s, id) // the device runs it in the session just requested

	// Files (33-35), connection request only (36), presets, provisions.
	resp, body = s.raw(t, http.MethodPut, "/files/fixture-firmware.bin", map[string]string{"Content-Type": "application/octet-stream",
		"fileType": "3 Vendor Configuration File", "oui": "00D0D0", "productClass": "F650", "version": "1"}, "config")
	compareShape(t, "33-file-upload.json", resp, body)
	resp, body = s.raw(t, http.MethodGet, "/files/", nil, "")
	compareShape(t, "34-files-list.json", resp, body)
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", jsonCT, `{"name":"download","fileType":"3 Vendor Configuration File","fileName":"fixture-firmware.bin"}`)
	compareShape(t, "35-task-download.json", resp, body)
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request", nil, "")
	compareShape(t, "36-connection-request-only.json", resp, body)
	resp, body = s.raw(t, http.MethodGet, "/presets/", nil, "")
	compareShape(t, "39-presets-list.json", resp, body)
	resp, body = s.raw(t, http.MethodGet, "/provisions/", nil, "")
	compareShape(t, "40-provisions-list.json", resp, body)

	// The status lines themselves, byte for byte.
	if got := statusLine(t, s.url, "POST /devices/"+id+"/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"reboot\"}"); got != "HTTP/1.1 202 Accepted" {
		t.Errorf("status line %q", got)
	}
	waitNoTasksDelete(t, s, id)
	if got := statusLine(t, s.url, "GET /tasks/x HTTP/1.1\r\nHost: x\r\n\r\n"); got != "HTTP/1.1 405 Method Not Allowed" {
		t.Errorf("status line %q", got)
	}
}

// waitNoTasksDelete deletes every stored task of the device.
func waitNoTasksDelete(t *testing.T, s *sim, id string) {
	t.Helper()
	tasks, _, err := s.client.Tasks(ctxT(t, 10*time.Second), genieacsQuery(id))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		_ = s.client.DeleteTask(ctxT(t, 10*time.Second), tk.ID)
	}
}

func queryEscape(s string) string { return url.QueryEscape(s) }

func genieacsQuery(id string) genieacs.Query {
	return genieacs.Query{Filter: genieacs.Equal("device", id)}
}
