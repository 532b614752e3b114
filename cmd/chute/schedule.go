package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// schedule create|ls|rm|pause|resume: periodic schedules
// (chute.API.CreateSchedule …; docs/schedules.md).

func newScheduleCmd(f *clientFlags) *cobra.Command {
	cmd := groupCmd("schedule", "Create, list, pause and delete periodic schedules",
		newScheduleCreateCmd(f), newScheduleLsCmd(f), newScheduleRmCmd(f),
		newSchedulePauseCmd(f, true), newSchedulePauseCmd(f, false))
	cmd.Aliases = []string{"schedules"}
	return cmd
}

// scheduleFlags are the flags of schedule create.
type scheduleFlags struct {
	target, cron, tz, missed string
	every, jitter, ttl       time.Duration
	body, bodyFile, key      string
	headers                  map[string]string
	priority                 int
}

func newScheduleCreateCmd(f *clientFlags) *cobra.Command {
	var s scheduleFlags
	cmd := &cobra.Command{
		Use:   "create NAME --target QUEUE|TOPIC (--cron EXPR [--tz ZONE] | --every DURATION)",
		Short: "Create a schedule that publishes a message on a timetable",
		Long: `create makes schedule NAME, which publishes one message to --target at
every slot of --cron (5 fields, 6 with seconds first, or @hourly, @daily,
@weekly, @monthly, @yearly, "@every 30s"; read in --tz, an IANA zone,
default UTC) or every --every (whole seconds, aligned to the creation).

The broker fires each slot once, even across restarts and crashes. Slots
that fall while the broker is down follow --missed: skip (none of them
fires) or once (the latest fires once, at start). --jitter delays each
firing by a fixed amount in [0, jitter) derived from the name and slot.
See docs/schedules.md for the rules, daylight saving time included.`,
		Example: `  chute schedule create nightly-report --target reports --cron '30 2 * * *' --tz Europe/Berlin --body '{"report":"daily"}'
  chute schedule create heartbeat --target health --every 30s --ttl 1m --missed skip`,
		Args:              exactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			cfg, err := s.config()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			if err := api.CreateSchedule(ctx, name, cfg); err != nil {
				return err
			}
			info, err := findSchedule(cmd, api, name)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), newScheduleJSON(info))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "created schedule %s (%s → %s), next %s\n",
				name, scheduleSpec(info.Config), info.Config.Target, fmtSlot(info.NextFire))
			return err
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&s.target, "target", "", "queue or topic to publish to (required)")
	fl.StringVar(&s.cron, "cron", "", `cron expression: "30 2 * * *", "0 */5 * * * *", "@hourly", "@every 30s"`)
	fl.StringVar(&s.tz, "tz", "", "IANA time zone of --cron (such as Europe/Berlin; default UTC)")
	flagVar(fl, newDurationValue(&s.every, 0, false), "every", "DURATION", "fixed interval instead of --cron (whole seconds, at least 1s)")
	flagVar(fl, newDurationValue(&s.jitter, 0, false), "jitter", "DURATION", "delay each firing by a fixed per-slot amount below this (at most 1h)")
	fl.StringVar(&s.missed, "missed", "skip", "slots missed while the broker was down: skip, or once (fire the latest once)")
	fl.StringVar(&s.body, "body", "", "message body")
	fl.StringVar(&s.bodyFile, "body-file", "", "read the message body from this file")
	fl.Var(kvValue{&s.headers}, "header", "header key=value (repeatable)")
	fl.IntVar(&s.priority, "priority", 0, "priority 0 (lowest) to 9 (highest)")
	flagVar(fl, newDurationValue(&s.ttl, 0, false), "ttl", "DURATION", "time to live of each message (0: the queue's)")
	fl.StringVar(&s.key, "key", "", "ordering key of each message")
	return cmd
}

// config checks the flags and returns the schedule they describe.
func (s *scheduleFlags) config() (chute.ScheduleConfig, error) {
	switch {
	case s.target == "":
		return chute.ScheduleConfig{}, usageError{errors.New("--target is required")}
	case (s.cron == "") == (s.every == 0):
		return chute.ScheduleConfig{}, usageError{errors.New("give exactly one of --cron and --every")}
	case s.tz != "" && s.cron == "":
		return chute.ScheduleConfig{}, usageError{errors.New("--tz applies to --cron only")}
	case s.missed != "skip" && s.missed != "once":
		return chute.ScheduleConfig{}, usageError{fmt.Errorf("--missed %q: want skip or once", s.missed)}
	case s.priority < 0 || s.priority > 9:
		return chute.ScheduleConfig{}, usageError{fmt.Errorf("--priority %d: want 0 to 9", s.priority)}
	case s.body != "" && s.bodyFile != "":
		return chute.ScheduleConfig{}, usageError{errors.New("give either --body or --body-file, not both")}
	}
	body := []byte(s.body)
	if s.bodyFile != "" {
		b, err := os.ReadFile(s.bodyFile)
		if err != nil {
			return chute.ScheduleConfig{}, fmt.Errorf("read --body-file: %w", err)
		}
		body = b
	}
	return chute.ScheduleConfig{Target: s.target, Cron: s.cron, Every: s.every, TimeZone: s.tz, Jitter: s.jitter, Missed: s.missed,
		Message: chute.Message{Body: body, Headers: s.headers, Priority: s.priority, TTL: s.ttl, Key: s.key}}, nil
}

func newScheduleLsCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List schedules with their next and last slots",
		Args:    noArgs,
		RunE: withAPI(f, func(cmd *cobra.Command, _ []string, api chute.API) error {
			all, err := api.Schedules(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				out := make([]scheduleJSON, len(all))
				for i, s := range all {
					out[i] = newScheduleJSON(s)
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tTARGET\tSPEC\tNEXT\tLAST\tFIRED\tPAUSED")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Config.Target, scheduleSpec(s.Config),
					fmtSlot(s.NextFire), fmtSlot(s.LastSlot), s.Fired, yesNo(s.Paused))
			}
			return tw.Flush()
		}),
	}
}

func newScheduleRmCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a schedule (the messages it published stay)",
		Args:    exactArgs(1),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			name := args[0]
			if err := api.DeleteSchedule(cmd.Context(), name); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"schedule": name, "deleted": true})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted schedule %s\n", name)
			return err
		}),
	}
}

func newSchedulePauseCmd(f *clientFlags, pause bool) *cobra.Command {
	use, short, verb := "pause NAME", "Stop a schedule from firing until resume", "paused"
	if !pause {
		use, short, verb = "resume NAME", "Let a paused schedule fire again (missed slots follow its --missed policy)", "resumed"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			ctx, name := cmd.Context(), args[0]
			var err error
			if pause {
				err = api.PauseSchedule(ctx, name)
			} else {
				err = api.ResumeSchedule(ctx, name)
			}
			if err != nil {
				return err
			}
			info, err := findSchedule(cmd, api, name)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), newScheduleJSON(info))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s schedule %s, next %s\n", verb, name, fmtSlot(info.NextFire))
			return err
		}),
	}
}

func findSchedule(cmd *cobra.Command, api chute.API, name string) (chute.ScheduleInfo, error) {
	all, err := api.Schedules(cmd.Context())
	if err != nil {
		return chute.ScheduleInfo{}, err
	}
	for _, s := range all {
		if s.Name == name {
			return s, nil
		}
	}
	return chute.ScheduleInfo{}, fmt.Errorf("%w: %s", chute.ErrScheduleNotFound, name)
}

// scheduleSpec is a schedule's timetable in one word: "every 30s", or the
// cron expression with its zone.
func scheduleSpec(c chute.ScheduleConfig) string {
	if c.Cron == "" {
		return "every " + fmtDuration(c.Every)
	}
	if c.TimeZone != "" {
		return c.Cron + " (" + c.TimeZone + ")"
	}
	return c.Cron
}

// fmtSlot prints a slot time in UTC, "-" for none.
func fmtSlot(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// scheduleJSON is a schedule as --json prints it (docs/cli.md, "schedule").
type scheduleJSON struct {
	Name      string            `json:"name"`
	Target    string            `json:"target"`
	Cron      string            `json:"cron,omitempty"`
	Every     string            `json:"every,omitempty"`
	TimeZone  string            `json:"time_zone,omitempty"`
	Jitter    string            `json:"jitter,omitempty"`
	Missed    string            `json:"missed"`
	Body      string            `json:"body"`
	Headers   map[string]string `json:"headers,omitempty"`
	Priority  int               `json:"priority"`
	TTL       string            `json:"ttl,omitempty"`
	Key       string            `json:"key,omitempty"`
	Created   time.Time         `json:"created"`
	Paused    bool              `json:"paused"`
	LastSlot  *time.Time        `json:"last_slot"`
	NextSlot  *time.Time        `json:"next_slot"`
	NextFire  *time.Time        `json:"next_fire"`
	Fired     int64             `json:"fired"`
	Skipped   int64             `json:"skipped"`
	LastError string            `json:"last_error,omitempty"`
}

func newScheduleJSON(s chute.ScheduleInfo) scheduleJSON {
	c, m := s.Config, s.Config.Message
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return fmtDuration(d)
	}
	return scheduleJSON{Name: s.Name, Target: c.Target, Cron: c.Cron, Every: dur(c.Every), TimeZone: c.TimeZone,
		Jitter: dur(c.Jitter), Missed: c.Missed, Body: string(m.Body), Headers: m.Headers, Priority: m.Priority,
		TTL: dur(m.TTL), Key: m.Key, Created: s.Created.UTC(), Paused: s.Paused, LastSlot: opt(s.LastSlot),
		NextSlot: opt(s.NextSlot), NextFire: opt(s.NextFire), Fired: s.Fired, Skipped: s.Skipped, LastError: s.LastError}
}
