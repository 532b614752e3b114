package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/peers"
)

// The systems `all` compares: chute through a fresh `chute serve`, and
// each peer through a fresh server that package peers starts.

// systemKinds are the names --systems takes by default, in order.
var systemKinds = append([]string{"chute"}, peers.Kinds...)

// Replicated systems, for issue 12's comparison (not in the default
// list): a 3-node chute cluster, and NATS JetStream with R3 streams.
const (
	chuteR3 = "chute-r3"
	natsR3  = peers.NATSR3
)

// knownSystems are every name --systems takes.
var knownSystems = append(slices.Clone(systemKinds), chuteR3, natsR3)

// isChute says whether a system is chute's (the ratios' reference).
func isChute(kind string) bool { return kind == "chute" || kind == chuteR3 }

// running is one system's fresh server for one run.
type running struct {
	sys        adapters.System
	durability string
	stop       func() error
}

// startSystem starts a fresh server of kind with its data in dir.
func startSystem(ctx context.Context, kind, chuteBin, dir string) (*running, error) {
	if kind == chuteR3 {
		s, err := adapters.NewChuteCluster(ctx, chuteBin, dir, 3)
		if err != nil {
			return nil, err
		}
		return &running{sys: s, durability: s.Durability(), stop: s.Stop}, nil
	}
	if kind == "chute" {
		s, err := adapters.NewChuteServer(ctx, chuteBin, dir)
		if err != nil {
			return nil, err
		}
		return &running{sys: s, durability: s.Durability(), stop: s.Stop}, nil
	}
	p, err := peers.Start(ctx, kind, dir)
	if err != nil {
		return nil, err
	}
	sys, err := adapters.ForPeer(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (and stop: %v)", kind, err, p.Stop())
	}
	return &running{sys: sys, durability: p.Durability, stop: p.Stop}, nil
}

// versionOf returns the version line of kind's server ("" if unknown).
func versionOf(ctx context.Context, kind, chuteBin string) string {
	switch kind {
	case "chute", chuteR3:
		return firstLine(run(ctx, chuteBin, "--version"))
	case peers.NATS, peers.Redis, natsR3:
		bin, err := peers.Installed(kind)
		if err != nil {
			return "not installed"
		}
		return firstLine(run(ctx, bin, "--version"))
	case peers.RabbitMQ:
		// rabbitmqctl version needs a running node: the package says it.
		if v := run(ctx, "dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"); v != "" {
			return "rabbitmq-server " + v + " (Debian package)"
		}
		return "unknown"
	}
	return ""
}

// run returns a command's combined output, or "" if it failed.
func run(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// buildChute builds the chute binary of the repository this module
// belongs to (the bench module's replace of github.com/chutemq/chute) into
// dir, once per run of the command.
func buildChute(ctx context.Context, dir string) (string, error) {
	root := run(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/chutemq/chute")
	if root == "" {
		return "", usageError{fmt.Errorf("cannot find the chute repository (run from the bench module, or give --chute-bin)")}
	}
	bin := filepath.Join(dir, "chute")
	cmd := exec.CommandContext(ctx, "go", "build", "-C", root, "-o", bin, "./cmd/chute")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build chute in %s: %w", root, err)
	}
	return bin, nil
}
