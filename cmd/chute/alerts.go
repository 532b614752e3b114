package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/client"
)

// newAlertsCmd is the alerts group: ls asks a server for its alerts;
// export writes Prometheus rules and needs no server.
func newAlertsCmd(f *clientFlags) *cobra.Command {
	cmd := groupCmd("alerts", "List the server's firing alerts, or export the alert rules for Prometheus",
		newAlertsLsCmd(f), newAlertsExportCmd())
	cmd.Aliases = []string{"alert"}
	return cmd
}

func newAlertsLsCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the alerts firing on the server, and those resolved lately",
		Long: `ls lists the alerts that chute serve's evaluator has firing (oldest
first), then the latest resolved ones (newest first). The rules are the
built-in ones with the overrides of serve --alerts FILE (docs/operations.md,
"Alerts").`,
		Args: noArgs,
		RunE: withClient(f, func(cmd *cobra.Command, _ []string, c *client.Client) error {
			al, err := c.Alerts(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), alertsJSONOf(al))
			}
			out := cmd.OutOrStdout()
			if !al.Enabled {
				_, err := fmt.Fprintln(out, "the server evaluates no alerts (serve --alerts-off)")
				return err
			}
			if len(al.Firing)+len(al.Resolved) == 0 {
				_, err := fmt.Fprintln(out, "no alerts")
				return err
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "STATUS\tSEVERITY\tRULE\tQUEUE\tSINCE\tSUMMARY")
			for _, a := range append(al.Firing, al.Resolved...) {
				when := a.Started
				if a.Status == string(alerts.StatusResolved) {
					when = a.Resolved
				}
				queue := a.Queue
				if queue == "" {
					queue = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Status, a.Severity, a.Rule, queue,
					when.UTC().Format(time.RFC3339), a.Summary)
			}
			return tw.Flush()
		}),
	}
}

func newAlertsExportCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the alert rules as a Prometheus alerting-rules file (no server needed)",
		Long: `export writes the alert rules that chute serve evaluates — the built-in
rules, with the overrides and custom rules of --alerts FILE when given — as a
Prometheus alerting-rules file over chute's metrics, for operators who alert
from Prometheus and Alertmanager instead. It reads no server.`,
		Example: `  chute alerts export > chute-rules.yaml
  chute alerts export --alerts alerts.yaml > chute-rules.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg alerts.Config
			if file != "" {
				var err error
				if cfg, err = alerts.LoadConfig(file); err != nil {
					return usageError{err}
				}
			}
			return alerts.ExportPrometheus(cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&file, "alerts", "", "rules file (YAML or JSON), as given to chute serve --alerts")
	return cmd
}

// alertsJSON is the shape of `chute alerts ls --json`.
type alertsJSON struct {
	Enabled  bool        `json:"enabled"`
	Firing   []alertJSON `json:"firing"`
	Resolved []alertJSON `json:"resolved"`
}

type alertJSON struct {
	Rule      string     `json:"rule"`
	Queue     string     `json:"queue,omitempty"`
	Severity  string     `json:"severity"`
	Status    string     `json:"status"`
	Figure    string     `json:"figure"`
	Value     float64    `json:"value"`
	Current   float64    `json:"current"`
	Threshold float64    `json:"threshold"`
	Since     time.Time  `json:"since"`
	Started   time.Time  `json:"started"`
	Resolved  *time.Time `json:"resolved,omitempty"`
	Summary   string     `json:"summary"`
}

func alertsJSONOf(al client.Alerts) alertsJSON {
	conv := func(as []client.Alert) []alertJSON {
		out := []alertJSON{}
		for _, a := range as {
			j := alertJSON{Rule: a.Rule, Queue: a.Queue, Severity: a.Severity, Status: a.Status, Figure: a.Figure,
				Value: a.Value, Current: a.Current, Threshold: a.Threshold,
				Since: a.Since, Started: a.Started, Summary: a.Summary}
			if !a.Resolved.IsZero() {
				r := a.Resolved
				j.Resolved = &r
			}
			out = append(out, j)
		}
		return out
	}
	return alertsJSON{Enabled: al.Enabled, Firing: conv(al.Firing), Resolved: conv(al.Resolved)}
}
