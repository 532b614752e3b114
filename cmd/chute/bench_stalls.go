package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/spf13/cobra"
)

// bench stalls: how often the machine itself fails to run a thread that is
// ready (issue 11). On a virtual machine whose host caps its CPU time per
// period (a CFS quota: 100 ms periods), a load that uses up the quota
// early in a period stops every vCPU until the next one; a broker's tail
// latency measured then is the host's. The probe is its own process, so
// that neither the broker's nor the load generator's scheduling counts:
// it sleeps --tick again and again, and a wake-up later than --over past
// its time is a stall.

// stallResult is what bench stalls prints with --json.
type stallResult struct {
	Sleeps   int     `json:"sleeps"`
	Stalls   int     `json:"stalls"`
	StallMs  float64 `json:"stalled_ms"`      // the time lost in stalls, beyond the ticks
	Share    float64 `json:"stalled_share"`   // StallMs over the duration
	P99Ms    float64 `json:"late_p99_ms"`     // lateness of the wake-ups, p99
	MaxMs    float64 `json:"late_max_ms"`     // the longest stall
	PeriodMs float64 `json:"stall_period_ms"` // median time between the ends of stalls (0: fewer than 2)
}

func newBenchStallsCmd() *cobra.Command {
	var duration, tick, over time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stalls",
		Short: "How often this machine stalls a ready thread (run it beside a benchmark to tell the broker's tail latency from the host's)",
		Long: `stalls sleeps --tick, again and again for --duration, and counts the
wake-ups that come more than --over late: times when this machine ran none
of this process's threads although one was ready. Run it in a terminal of
its own beside a benchmark (chute bench run, or a comparison): stalls that
come only while the benchmark runs, every 100 ms or so, are a host that
caps the machine's CPU time (a virtual machine's quota, which the disk's
I/O may count against too); every process on the machine waits them out,
and a broker's p99 then measures them, not the broker. Threads of the
machine's own keeping every CPU busy bring shorter ones (a few ms: the
machine's scheduler), so run it where it competes as the broker does, not
with a lower priority. An idle machine should show none.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if duration <= 0 || tick <= 0 || over <= 0 || tick > duration {
				return usageError{fmt.Errorf("want --duration, --tick and --over above 0, and --tick ≤ --duration")}
			}
			res := measureStalls(duration, tick, over, time.Now, time.Sleep)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "# %s/%s, %d CPUs: sleeps of %v for %v; a stall is a wake-up more than %v late\n",
				runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), tick, duration, over)
			fmt.Fprintf(out, "sleeps %d  stalls %d  stalled %.1f ms (%.1f%% of the time)  late p99 %.3f ms  longest %.3f ms",
				res.Sleeps, res.Stalls, res.StallMs, 100*res.Share, res.P99Ms, res.MaxMs)
			if res.PeriodMs > 0 {
				fmt.Fprintf(out, "  one every %.0f ms (median)", res.PeriodMs)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long to measure")
	cmd.Flags().DurationVar(&tick, "tick", time.Millisecond, "how long each sleep is")
	cmd.Flags().DurationVar(&over, "over", 4*time.Millisecond, "a wake-up later than this is a stall")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// measureStalls sleeps tick until d has passed on now's clock and
// summarises how late each wake-up was.
func measureStalls(d, tick, over time.Duration, now func() time.Time, sleep func(time.Duration)) stallResult {
	var (
		res   stallResult
		lates []time.Duration
		ends  []time.Time
		lost  time.Duration
	)
	start := now()
	for t := start; t.Sub(start) < d; {
		sleep(tick)
		woke := now()
		late := max(woke.Sub(t)-tick, 0)
		lates = append(lates, late)
		if late > over {
			res.Stalls++
			lost += late
			ends = append(ends, woke)
		}
		t = woke
	}
	res.Sleeps = len(lates)
	slices.Sort(lates)
	res.P99Ms = ms(lates[min(len(lates)-1, len(lates)*99/100)])
	res.MaxMs = ms(lates[len(lates)-1])
	res.StallMs = ms(lost)
	res.Share = float64(lost) / float64(d)
	if len(ends) > 1 {
		gaps := make([]time.Duration, len(ends)-1)
		for i := range gaps {
			gaps[i] = ends[i+1].Sub(ends[i])
		}
		slices.Sort(gaps)
		res.PeriodMs = ms(gaps[len(gaps)/2])
	}
	return res
}
