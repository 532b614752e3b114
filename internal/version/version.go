// Package version tells which build of chute is running: the release it
// was cut as, the commit, when, and with which Go.
//
// A release build sets Version with the linker (scripts/release.sh):
//
//	go build -ldflags "-X github.com/chutemq/chute/internal/version.Version=v1.2.3" ./cmd/chute
//
// Without it, Get falls back on what the go command stamps into every
// binary (runtime/debug.ReadBuildInfo): the module version of a
// `go install ...@v1.2.3`, or "(devel)" for a build from a work tree, and
// the vcs.* settings (revision, time, modified) when the build saw a VCS
// checkout. Both the CLI (`chute version`, `chute --version`) and the
// server (GetServerInfo, /healthz) report the same Info.
package version

import (
	"runtime"
	"runtime/debug"
	"time"
)

// Version is the release, set at link time with -X; when it is set it wins
// over the build information.
var Version string

// Devel is the version of a build that names no release.
const Devel = "(devel)"

// Info identifies a build.
type Info struct {
	// Version is the release ("v1.2.3"), the module version of a go install
	// at a version, or Devel.
	Version string `json:"version"`
	// Commit is the VCS revision built from; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Time is the commit's time (vcs.time); zero when unknown.
	Time time.Time `json:"time,omitzero"`
	// Modified reports a work tree with changes not committed.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary ("go1.26.0").
	GoVersion string `json:"go_version"`
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Version)
}

// fromBuildInfo builds an Info from bi (nil when the binary carries none)
// and the link-time release, if any.
func fromBuildInfo(bi *debug.BuildInfo, release string) Info {
	info := Info{Version: Devel, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.Time, _ = time.Parse(time.RFC3339, s.Value)
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if release != "" {
		info.Version = release
	}
	return info
}

// ShortCommit is the commit cut to 12 characters, as people read it.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is one line for people: "v1.2.3 (commit 0123456789ab, modified,
// 2026-11-29T10:00:00Z, go1.26.0)", leaving out what is unknown.
func (i Info) String() string {
	s := i.Version + " ("
	if i.Commit != "" {
		s += "commit " + i.ShortCommit() + ", "
		if i.Modified {
			s += "modified, "
		}
	}
	if !i.Time.IsZero() {
		s += i.Time.UTC().Format(time.RFC3339) + ", "
	}
	return s + i.GoVersion + ")"
}
