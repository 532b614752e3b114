package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/version"
)

// versionTimeout bounds the wait for the server's answer: version must
// answer promptly even when the server's host drops packets.
const versionTimeout = 5 * time.Second

func newVersionCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of chute, and of the server when one answers",
		Long: `version prints this build of chute (version, commit, build time, Go
version, platform), then asks the server (--server, $CHUTE_SERVER or the
default address) which build it runs. A server that cannot be reached is
reported as "server: unreachable" and is no failure: the exit status is 0.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVersion(cmd, f) },
	}
}

// versionReport is what chute version prints; with --json, as is.
type versionReport struct {
	Client clientVersion  `json:"client"`
	Server *serverVersion `json:"server"`
}

type clientVersion struct {
	version.Info
	Platform string `json:"platform"` // GOOS/GOARCH
}

type serverVersion struct {
	Address   string    `json:"address"`
	Reachable bool      `json:"reachable"`
	Version   string    `json:"version,omitempty"`
	Commit    string    `json:"commit,omitempty"`
	GoVersion string    `json:"go_version,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Error     string    `json:"error,omitempty"` // why there is no version
}

func runVersion(cmd *cobra.Command, f *clientFlags) error {
	rep := versionReport{Client: clientVersion{Info: version.Get(), Platform: runtime.GOOS + "/" + runtime.GOARCH}}
	c, err := f.dial(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), versionTimeout)
	defer cancel()
	info, err := c.ServerInfo(ctx)
	sv := &serverVersion{Address: serverAddress(f)}
	rep.Server = sv
	switch code := connect.CodeOf(err); {
	case err == nil:
		sv.Reachable, sv.Version, sv.Commit, sv.GoVersion, sv.StartedAt = true, info.Version, info.Commit, info.GoVersion, info.StartedAt
	case code == connect.CodeUnavailable || code == connect.CodeDeadlineExceeded:
		sv.Error = "unreachable: " + err.Error()
		err = nil
	case code == connect.CodeUnimplemented:
		sv.Reachable, sv.Error = true, "the server is too old to report its version"
		err = nil
	default: // refused (a wrong token): say so, and fail with its exit status
		sv.Reachable, sv.Error = true, err.Error()
	}
	if perr := printVersion(cmd.OutOrStdout(), rep, f.json); perr != nil {
		return perr
	}
	return err
}

// serverAddress is the server chute version asks, as the user named it.
func serverAddress(f *clientFlags) string {
	if f.server != "" {
		return f.server
	}
	if s := os.Getenv("CHUTE_SERVER"); s != "" {
		return s
	}
	return client.DefaultAddr
}

func printVersion(w io.Writer, rep versionReport, asJSON bool) error {
	if asJSON {
		return printJSON(w, rep)
	}
	cv := rep.Client
	fmt.Fprintf(w, "chute %s\n", cv.Version)
	fmt.Fprintf(w, "  commit:   %s\n", commitText(cv.Commit, cv.Modified))
	fmt.Fprintf(w, "  built:    %s\n", timeText(cv.Time))
	fmt.Fprintf(w, "  go:       %s\n", cv.GoVersion)
	fmt.Fprintf(w, "  platform: %s\n", cv.Platform)
	sv := rep.Server
	switch {
	case sv == nil:
	case !sv.Reachable:
		fmt.Fprintf(w, "server: unreachable (%s)\n", sv.Address)
	case sv.Error != "":
		fmt.Fprintf(w, "server: %s: %s\n", sv.Address, sv.Error)
	default:
		fmt.Fprintf(w, "server: %s\n", sv.Address)
		fmt.Fprintf(w, "  version:  %s\n", sv.Version)
		fmt.Fprintf(w, "  commit:   %s\n", commitText(sv.Commit, false))
		fmt.Fprintf(w, "  go:       %s\n", sv.GoVersion)
		_, err := fmt.Fprintf(w, "  started:  %s\n", timeText(sv.StartedAt))
		return err
	}
	return nil
}

func commitText(commit string, modified bool) string {
	switch {
	case commit == "":
		return "unknown"
	case modified:
		return commit + " (modified)"
	}
	return commit
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// versionLine is the one line of chute --version.
func versionLine(v version.Info) string {
	return fmt.Sprintf("%s %s/%s", v, runtime.GOOS, runtime.GOARCH)
}
