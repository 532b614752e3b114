package serveproc

import "testing"

func TestServingAddr(t *testing.T) {
	for line, want := range map[string]string{
		`{"time":"x","level":"INFO","msg":"chute serving","addr":"http://127.0.0.1:7420","data":"d"}`: "127.0.0.1:7420",
		`{"level":"INFO","msg":"chute serving","addr":"https://[::1]:443"}`:                           "[::1]:443",
		`{"level":"INFO","msg":"stopped"}`:                                                            "",
		`{"level":"INFO","msg":"chute serving"}`:                                                      "",
		`chute: listening on 127.0.0.1:7420`:                                                          "",
	} {
		if got, ok := ServingAddr([]byte(line)); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", line, got, ok, want)
		}
	}
	if !QuietLogLine([]byte(`{"level":"INFO","msg":"x"}`)) || QuietLogLine([]byte(`{"level":"WARN","msg":"x"}`)) ||
		QuietLogLine([]byte(`{"level":"ERROR","msg":"x"}`)) || QuietLogLine([]byte("WARNING: DATA RACE")) {
		t.Error("quietLogLine: info is quiet; warn, error and whatever is no log record are not")
	}
}
