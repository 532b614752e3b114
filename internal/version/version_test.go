package version

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-29T10:11:12Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	when := time.Date(2026, 11, 29, 10, 11, 12, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		bi      *debug.BuildInfo
		release string
		want    Info
	}{
		{"no build info", nil, "", Info{Version: Devel, GoVersion: runtime.Version()}},
		{"work tree without VCS", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, "",
			Info{Version: Devel, GoVersion: "go1.26.0"}},
		{"go install at a version", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"}}, "",
			Info{Version: "v1.4.0", GoVersion: "go1.26.0"}},
		{"work tree with VCS", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "",
			Info{Version: Devel, Commit: "0123456789abcdef0123456789abcdef01234567", Time: when, Modified: true, GoVersion: "go1.26.0"}},
		{"release wins", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20261129101112-0123456789ab"}, Settings: vcs}, "v1.2.3",
			Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Time: when, Modified: true, GoVersion: "go1.26.0"}},
		{"release without build info", nil, "v1.2.3", Info{Version: "v1.2.3", GoVersion: runtime.Version()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.release); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestGetVersionWins: the link-time Version (what -X sets) is what Get
// reports, whatever the build information says.
func TestGetVersionWins(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.8.7"
	if got := Get(); got.Version != "v9.8.7" || got.GoVersion == "" {
		t.Fatalf("Get() = %+v, want version v9.8.7 and a Go version", got)
	}
	Version = ""
	if got := Get(); got.Version == "" || got.Version == "v9.8.7" {
		t.Fatalf("Get() without a release = %+v", got)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Version: Devel, GoVersion: "go1.26.0"}, "(devel) (go1.26.0)"},
		{Info{Version: "v1.2.3", Commit: "0123456789abcdef", Time: time.Date(2026, 11, 29, 10, 11, 12, 0, time.UTC), GoVersion: "go1.26.0"},
			"v1.2.3 (commit 0123456789ab, 2026-11-29T10:11:12Z, go1.26.0)"},
		{Info{Version: "v1.2.3", Commit: "abc", Modified: true, GoVersion: "go1.26.0"}, "v1.2.3 (commit abc, modified, go1.26.0)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
