package verdict

import (
	"errors"
	"strings"
	"testing"

	"fieldagent/diagnostics"
)

func sampleReport() Report {
	return Evaluate(ProfileFor("gpon", 100, 30), []diagnostics.Result{
		ok("line", rd("optical_rx_power_dbm", -28.3, "dBm"), rd("wan_up", 0, ""), rd("lan1_speed_mbps", 1000, "Mbit/s")),
		ok("speed_download", rd("download_mbps", 94.5, "Mbit/s")),
		{Probe: "dns", Err: "lookup www.189.cn:\n i/o timeout"},
	}, map[string]string{FactWANLastError: "ERROR_AUTHENTICATION_FAILURE", FactWANStatus: "Disconnected"})
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"   CHECK             VALUE        LIMIT                                                    PROBE\n" +
		"✘  optical Rx power  −28.3 dBm    −27 … −8 dBm (warn below −25)                            line\n" +
		"✘  internet WAN      0            connected with an address                                line\n" +
		"✔  LAN1 link speed   1000 Mbit/s  ≥ 1000 Mbit/s                                            line\n" +
		"✔  download speed    94.5 Mbit/s  ≥ 90 Mbit/s (90% of 100)                                 speed_download\n" +
		"✘  dns probe         -            completes without error: lookup www.189.cn: i/o timeout  dns\n" +
		"✘ overall: fail (profile gpon-class-b+)\n"
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteFindings(t *testing.T) {
	rep := sampleReport()
	for _, tc := range []struct {
		lang Lang
		want []string
	}{
		{English, []string{
			"✘ PPPOE_AUTH_FAILED: The gateway's PPPoE dial is refused (error 691).\n",
			"    cause:    The operator's server rejected the account",
			"    evidence: wan_last_error = ERROR_AUTHENTICATION_FAILURE; wan_status = Disconnected; wan_up = 0\n",
			"\n✘ OPTICAL_RX_LOW: The optical receive power is too low.\n",
		}},
		{Chinese, []string{
			"✘ PPPOE_AUTH_FAILED: 网关PPPoE拨号被拒绝（错误691）。\n",
			"    原因：宽带账号或密码错误",
			"    处理：核对工单上的宽带账号和密码",
			"    依据：wan_last_error = ERROR_AUTHENTICATION_FAILURE",
		}},
	} {
		var b strings.Builder
		if err := rep.WriteFindings(&b, tc.lang); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s findings lack %q:\n%s", tc.lang, w, b.String())
			}
		}
	}
	var b strings.Builder
	if err := (Report{}).WriteFindings(&b, English); err != nil || b.Len() != 0 {
		t.Errorf("no findings wrote %q (%v)", b.String(), err)
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteErrors(t *testing.T) {
	rep := sampleReport()
	if err := rep.WriteTable(failWriter{}); !errors.Is(err, errDiskFull) {
		t.Errorf("WriteTable = %v", err)
	}
	if err := rep.WriteFindings(failWriter{}, English); !errors.Is(err, errDiskFull) {
		t.Errorf("WriteFindings = %v", err)
	}
}

// A long probe error does not stretch the table: it is cut in the row and
// printed whole below the table.
func TestWriteTableLongDetail(t *testing.T) {
	long := "resolver 127.0.0.1:1 refused the udp connection for www.baidu.com. A: nothing serves DNS on that port"
	r := Report{Status: StatusFail, Checks: []Check{{Name: "dns probe", Status: StatusFail, Limit: "completes without error", Detail: long, Probe: "dns"}}}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len([]rune(lines[1])) > 120 {
		t.Errorf("row is %d runes wide:\n%s", len([]rune(lines[1])), b.String())
	}
	if !strings.Contains(lines[1], "…") || !strings.Contains(b.String(), "✘ dns probe: "+long+"\n") {
		t.Errorf("detail not cut in the row and printed whole below:\n%s", b.String())
	}
}
