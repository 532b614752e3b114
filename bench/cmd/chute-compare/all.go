package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/bench/workload"
)

// allFlags are the flags of `all`.
type allFlags struct {
	systems, workloads string
	runs               int
	asJSON             bool
	chuteBin, data     string
	disk               time.Duration
	stalls             bool
	cfg                workload.Config
}

func newAllCmd() *cobra.Command {
	var f allFlags
	cmd := &cobra.Command{
		Use:   "all",
		Short: "The issue-11 comparison: every workload against chute and each peer, fresh servers, medians of runs, ratios",
		Long: `all runs the comparison's workloads (W1–W8, docs/benchmarks.md) against each
system in --systems: for each of --runs runs and each system (in an order
that rotates from run to run), it starts a fresh server on 127.0.0.1 (chute:
'chute serve' with its defaults — sync always, metrics and alerts on —
built from this repository or --chute-bin; the peers through package peers,
installed from Debian's packages if missing, with their most durable
settings), runs the workloads, and stops it by PID. In each run it also
measures the disk's own sync latency ('chute bench disk') for W3. With
--stalls, 'chute bench stalls' runs beside each system's W3 and its figures
(wake-ups over 2 ms late, the longest) join that system's row: the times
the machine ran nothing at all, which a latency's tail measures too.

It prints a header (the machine, its load, the versions and the command
line), then per workload each system's median figures over the runs, the
ratio chute/best peer per figure (↑ higher is better: rates; ↓ lower is
better: latency, memory, disk, so there below 1 favours chute), and each
system's durability. Progress goes to stderr. --json prints the same, and
every run's figures, as JSON. A workload a system lacks (delays and
priorities, W5) is n/a, with the reason.

The full comparison (about an hour with the 1M-message backlog):

  go -C bench run ./cmd/chute-compare all --runs 3 --duration 5s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAll(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.systems, "systems", strings.Join(systemKinds, ","), "comma-separated systems to compare: chute, nats, redis, rabbitmq; or chute-r3 and nats-r3 (3-node clusters, issue 12)")
	fl.StringVar(&f.workloads, "workloads", "W1,W2,W3,W4,W5,W6,W7,W8", "comma-separated workloads")
	fl.IntVar(&f.runs, "runs", 3, "fresh-server runs per system (the tables show medians)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON instead of tables")
	fl.StringVar(&f.chuteBin, "chute-bin", "", "chute binary to run (default: build ./cmd/chute of this repository once)")
	fl.StringVar(&f.data, "data", "", "directory for the servers' data (default: a temporary one, removed afterwards)")
	fl.DurationVar(&f.disk, "disk-duration", 3*time.Second, "how long 'chute bench disk' measures in each run (W3)")
	fl.BoolVar(&f.stalls, "stalls", false, "run 'chute bench stalls' beside each system's W3 (for --duration) and add its stalls over 2 ms and the longest to the system's figures (one more thread waking every millisecond, for every system alike)")
	c := &f.cfg
	fl.DurationVar(&c.Duration, "duration", 5*time.Second, "how long each producer runs (W1–W4, W7, W8)")
	fl.IntVar(&c.Size, "size", 256, "body size in bytes (W1–W4, W7, W8; at least 24)")
	fl.IntVar(&c.Window, "window", 1000, "producer window: unconfirmed messages (W1–W4)")
	fl.IntVar(&c.Prefetch, "prefetch", 1000, "consumer prefetch (W2–W4, W6)")
	fl.IntVar(&c.Rate, "rate", 2000, "W3's paced rate, messages/s")
	fl.IntVar(&c.Subscriptions, "subscriptions", 4, "W4's fan-out")
	fl.IntVar(&c.DelayedMessages, "delayed-messages", 10_000, "W5's delayed burst")
	fl.DurationVar(&c.DelaySpread, "delay-spread", 2*time.Second, "W5's delays are uniform over [0, this)")
	fl.IntVar(&c.PriorityMessages, "priority-messages", 1000, "W5's backlog of mixed priorities")
	fl.IntVar(&c.BacklogMessages, "backlog-messages", 1_000_000, "W6's backlog")
	fl.IntVar(&c.BacklogSize, "backlog-size", 1024, "W6's body size in bytes")
	fl.DurationVar(&c.BacklogSettle, "backlog-settle", 10*time.Second, "how long after W6's last ack the data directory is watched")
	fl.IntVar(&c.Publishers, "publishers", 256, "W7's synchronous publishers")
	fl.IntVar(&c.Queues, "queues", 1000, "W8's queues")
	fl.IntVar(&c.QueueWorkers, "queue-workers", 10, "W8's producers, and consumers")
	fl.DurationVar(&c.Idle, "idle", 30*time.Second, "a consumer still expecting messages fails after this long without one")
	return cmd
}

// allResult is what `all` measured: the header, every run's reports and
// the disk's sync latency per run.
type allResult struct {
	Header  header            `json:"header"`
	Reports []workload.Report `json:"reports"`
	Errors  []runError        `json:"errors,omitempty"`
	Tables  []table           `json:"tables"`
}

// runError is a workload that failed on a system in a run.
type runError struct {
	Run      int    `json:"run"`
	System   string `json:"system"`
	Workload string `json:"workload"`
	Err      string `json:"error"`
}

// diskSystem labels the disk's own figures in W3's table.
const diskSystem = "disk (chute bench disk)"

func runAll(cmd *cobra.Command, f allFlags) error {
	ctx := cmd.Context()
	kinds, wls, err := f.parse()
	if err != nil {
		return err
	}
	cfg := f.cfg.WithDefaults()
	root, cleanup, err := dataRoot(f.data)
	if err != nil {
		return err
	}
	defer cleanup()
	bin := f.chuteBin
	if bin == "" {
		if bin, err = buildChute(ctx, root); err != nil {
			return err
		}
	}
	res := allResult{Header: newHeader(ctx, kinds, bin, f.runs)}
	durability := map[string]string{}
	progress := cmd.ErrOrStderr()
	for r := 1; r <= f.runs; r++ {
		if slices.ContainsFunc(wls, func(w workload.Workload) bool { return w.ID == "W3" }) {
			d, err := diskSync(ctx, bin, root, f.disk)
			if err != nil {
				res.Errors = append(res.Errors, runError{r, diskSystem, "W3", err.Error()})
			} else {
				res.Reports = append(res.Reports, d)
			}
		}
		for i := range kinds {
			kind := kinds[(i+r-1)%len(kinds)] // rotate: no system always first
			dir := filepath.Join(root, fmt.Sprintf("run%d-%s", r, kind))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			sys, err := startSystem(ctx, kind, bin, dir)
			if err != nil {
				res.Errors = append(res.Errors, runError{r, kind, "start", err.Error()})
				fmt.Fprintf(progress, "run %d %s: start: %v\n", r, kind, err)
				continue
			}
			durability[kind] = sys.durability
			for _, w := range wls {
				if ctx.Err() != nil {
					break
				}
				began := time.Now()
				var probe *stallProbe
				if f.stalls && w.ID == "W3" {
					probe = startStalls(ctx, bin, cfg.Duration)
				}
				rep, err := w.Run(ctx, sys.sys, cfg)
				rep.Workload, rep.System = w.ID, kind
				if probe != nil {
					figs, perr := probe.wait()
					if perr != nil && err == nil {
						err = perr
					}
					rep.Figures = append(rep.Figures, figs...)
				}
				took := time.Since(began).Round(time.Millisecond)
				if err != nil {
					res.Errors = append(res.Errors, runError{r, kind, w.ID, err.Error()})
					fmt.Fprintf(progress, "run %d %s %s (%v): error: %v\n", r, kind, w.ID, took, err)
					continue
				}
				res.Reports = append(res.Reports, rep)
				fmt.Fprintf(progress, "run %d %s %s (%v): %s\n", r, kind, w.ID, took, brief(rep))
			}
			if err := sys.stop(); err != nil {
				res.Errors = append(res.Errors, runError{r, kind, "stop", err.Error()})
			}
			os.RemoveAll(dir)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if waited, quiet := settleMachine(ctx); !quiet {
				fmt.Fprintf(progress, "run %d %s: the machine was still busy %v after the stop\n", r, kind, waited.Round(time.Millisecond))
			}
		}
	}
	res.Tables = tables(wls, kinds, res.Reports, durability, cfg)
	out := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.Header.print(out)
		for _, t := range res.Tables {
			t.print(out)
		}
		for _, e := range res.Errors {
			fmt.Fprintf(out, "error: run %d, %s, %s: %s\n", e.Run, e.System, e.Workload, e.Err)
		}
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d workloads failed (listed above)", len(res.Errors))
	}
	return nil
}

// parse checks --systems and --workloads.
func (f allFlags) parse() ([]string, []workload.Workload, error) {
	if f.runs < 1 {
		return nil, nil, usageError{fmt.Errorf("--runs must be at least 1")}
	}
	var kinds []string
	for _, k := range strings.Split(f.systems, ",") {
		k = strings.ToLower(strings.TrimSpace(k))
		if !slices.Contains(knownSystems, k) {
			return nil, nil, usageError{fmt.Errorf("--systems: unknown system %q (want some of %s)", k, strings.Join(knownSystems, ", "))}
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	var wls []workload.Workload
	for _, id := range strings.Split(f.workloads, ",") {
		w, ok := workload.Find(strings.TrimSpace(id))
		if !ok {
			return nil, nil, usageError{fmt.Errorf("--workloads: unknown workload %q (want W1 to W8)", id)}
		}
		wls = append(wls, w)
	}
	return kinds, wls, nil
}

// dataRoot returns the directory the servers' data goes under and a
// function removing what this run made there.
func dataRoot(data string) (string, func(), error) {
	if data == "" {
		dir, err := os.MkdirTemp("", "chute-compare-")
		if err != nil {
			return "", nil, err
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(data, "all-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// diskSync measures the disk's sync latency under dir with `chute bench
// disk --json`, as a W3 report of the pseudo-system diskSystem.
func diskSync(ctx context.Context, bin, dir string, d time.Duration) (workload.Report, error) {
	out, err := exec.CommandContext(ctx, bin, "bench", "disk", "--json", "--duration", d.String(), "--data", dir).Output()
	if err != nil {
		return workload.Report{}, fmt.Errorf("chute bench disk: %w", err)
	}
	var v struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return workload.Report{}, fmt.Errorf("chute bench disk output: %w", err)
	}
	return workload.Report{Workload: "W3", System: diskSystem, Figures: []workload.Figure{
		{Name: "fsync p50 ms", Value: v.P50, Lower: true},
		{Name: "fsync p99 ms", Value: v.P99, Lower: true},
	}}, nil
}

// stallProbe is `chute bench stalls` running beside a workload.
type stallProbe struct {
	cmd *exec.Cmd
	out bytes.Buffer
	err error // from starting it
}

// stallOver is the lateness the probe counts as a stall.
const stallOver = 2 * time.Millisecond

// startStalls starts `chute bench stalls --json` for d.
func startStalls(ctx context.Context, bin string, d time.Duration) *stallProbe {
	p := &stallProbe{cmd: exec.CommandContext(ctx, bin, "bench", "stalls", "--json", "--duration", d.String(), "--over", stallOver.String())}
	p.cmd.Stdout = &p.out
	p.err = p.cmd.Start()
	return p
}

// wait waits for the probe to end and returns its figures.
func (p *stallProbe) wait() ([]workload.Figure, error) {
	if p.err != nil {
		return nil, fmt.Errorf("chute bench stalls: %w", p.err)
	}
	if err := p.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("chute bench stalls: %w", err)
	}
	return stallFigures(p.out.Bytes())
}

// stallFigures reads `chute bench stalls --json` into figures of a
// system's row: how many wake-ups were over stallOver late, and the
// latest.
func stallFigures(out []byte) ([]workload.Figure, error) {
	var v struct {
		Stalls *int     `json:"stalls"`
		Max    *float64 `json:"late_max_ms"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Stalls == nil || v.Max == nil {
		return nil, fmt.Errorf("chute bench stalls output %q: %v", out, err)
	}
	return []workload.Figure{
		{Name: fmt.Sprintf("stalls >%v", stallOver), Value: float64(*v.Stalls), Lower: true},
		{Name: "longest stall ms", Value: *v.Max, Lower: true},
	}, nil
}

// brief is a report on one line, for progress.
func brief(r workload.Report) string {
	if r.NA != "" {
		return "n/a: " + r.NA
	}
	var parts []string
	for _, f := range r.Figures {
		parts = append(parts, f.Name+" "+format(f.Name, f.Value))
	}
	return strings.Join(append(parts, r.Notes...), ", ")
}

// header is the machine, the versions and the command line.
type header struct {
	Machine  string            `json:"machine"`
	CPUs     int               `json:"cpus"`
	CPU      string            `json:"cpu"`
	Go       string            `json:"go"`
	Versions map[string]string `json:"versions"`
	Command  string            `json:"command"`
	Runs     int               `json:"runs"`
	Started  time.Time         `json:"started"`
	// Load is /proc/loadavg at the start: how busy the machine was.
	Load string `json:"load"`
}

func newHeader(ctx context.Context, kinds []string, chuteBin string, runs int) header {
	h := header{
		Machine: run(ctx, "uname", "-srmo"), CPUs: runtime.NumCPU(), CPU: cpuModel(),
		Go: run(ctx, "go", "version"), Versions: map[string]string{},
		Command: strings.Join(os.Args, " "), Runs: runs, Started: time.Now().UTC(),
		Load: loadAverage(),
	}
	for _, k := range kinds {
		h.Versions[k] = versionOf(ctx, k, chuteBin)
	}
	return h
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (h header) print(w io.Writer) {
	fmt.Fprintf(w, "# chute-compare all, %s\n", h.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "# machine: %s, %d CPUs, %s\n", h.Machine, h.CPUs, h.CPU)
	fmt.Fprintf(w, "# load average at the start: %s\n", h.Load)
	fmt.Fprintf(w, "# %s\n", h.Go)
	keys := make([]string, 0, len(h.Versions))
	for k := range h.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "# %s: %s\n", k, h.Versions[k])
	}
	fmt.Fprintf(w, "# command: %s\n", h.Command)
	fmt.Fprintf(w, "# figures are medians of %d fresh-server runs; ratio = chute / best peer\n", h.Runs)
}
