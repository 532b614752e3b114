package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/chutemq/chute/bench/workload"
)

// table is one workload's results: each system's median figures over the
// runs, and the ratio chute/best peer per figure.
type table struct {
	Workload string   `json:"workload"`
	Title    string   `json:"title"`
	Shape    string   `json:"shape"`
	Figures  []string `json:"figures"`
	Lower    []bool   `json:"lower_is_better"`
	Rows     []row    `json:"rows"`
	// Ratios are chute's median over the best peer's, per figure (nil
	// where either is missing or the best is 0).
	Ratios []*ratio `json:"ratios"`
}

// row is one system's medians (nil: no figure) over Runs runs.
type row struct {
	System     string    `json:"system"`
	Values     []*number `json:"values"`
	Runs       int       `json:"runs"`
	NA         string    `json:"na,omitempty"`
	Durability string    `json:"durability,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
}

// ratio is chute/best peer for one figure, and which peer was best.
type ratio struct {
	Value number `json:"value"`
	Peer  string `json:"peer"`
}

// number is a figure's value; infinity (workload.Never) is written
// "never" in JSON, which has no infinity.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
		return []byte(`"never"`), nil
	}
	return json.Marshal(float64(n))
}

// tables aggregates reports into one table per workload, systems in the
// order of kinds (and W3's disk row last).
func tables(wls []workload.Workload, kinds []string, reports []workload.Report, durability map[string]string, cfg workload.Config) []table {
	var out []table
	for _, w := range wls {
		t := table{Workload: w.ID, Title: w.Title, Shape: w.Shape(cfg)}
		var mine []workload.Report
		for _, r := range reports {
			if r.Workload == w.ID {
				mine = append(mine, r)
			}
		}
		systems := slices.Clone(kinds)
		if w.ID == "W3" {
			systems = append(systems, diskSystem)
		}
		// Columns in the order the systems' figures come, chute's first.
		for _, sys := range systems {
			for _, r := range mine {
				if r.System != sys {
					continue
				}
				for _, f := range r.Figures {
					if !slices.Contains(t.Figures, f.Name) {
						t.Figures = append(t.Figures, f.Name)
						t.Lower = append(t.Lower, f.Lower)
					}
				}
			}
		}
		for _, sys := range systems {
			rw := row{System: sys, Values: make([]*number, len(t.Figures)), Durability: durability[sys]}
			samples := make([][]float64, len(t.Figures))
			for _, r := range mine {
				if r.System != sys {
					continue
				}
				if r.NA != "" {
					rw.NA = r.NA
					continue
				}
				rw.Runs++
				for _, n := range r.Notes {
					if !slices.Contains(rw.Notes, n) {
						rw.Notes = append(rw.Notes, n)
					}
				}
				for _, f := range r.Figures {
					i := slices.Index(t.Figures, f.Name)
					samples[i] = append(samples[i], f.Value)
				}
			}
			for i, s := range samples {
				if len(s) > 0 {
					m := number(median(s))
					rw.Values[i] = &m
				}
			}
			if rw.Runs > 0 || rw.NA != "" {
				t.Rows = append(t.Rows, rw)
			}
		}
		t.Ratios = ratios(t)
		out = append(out, t)
	}
	return out
}

// ratios computes chute/best peer per figure of t.
func ratios(t table) []*ratio {
	out := make([]*ratio, len(t.Figures))
	var chute *row
	for i := range t.Rows {
		if isChute(t.Rows[i].System) && chute == nil {
			chute = &t.Rows[i]
		}
	}
	if chute == nil {
		return out
	}
	for i := range t.Figures {
		if chute.Values[i] == nil {
			continue
		}
		var best *number
		var peer string
		for _, r := range t.Rows {
			if isChute(r.System) || r.System == diskSystem || r.Values[i] == nil {
				continue
			}
			v := r.Values[i]
			if best == nil || (t.Lower[i] && *v < *best) || (!t.Lower[i] && *v > *best) {
				best, peer = v, r.System
			}
		}
		if best == nil || *best == 0 || math.IsInf(float64(*best), 0) {
			continue
		}
		out[i] = &ratio{Value: *chute.Values[i] / *best, Peer: peer}
	}
	return out
}

// median of s (which it sorts): the middle value, or the mean of the two
// middle ones.
func median(s []float64) float64 {
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (t table) print(w io.Writer) {
	fmt.Fprintf(w, "\n## %s %s — %s\n", t.Workload, t.Title, t.Shape)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"system"}
	for i, f := range t.Figures {
		arrow := "↑"
		if t.Lower[i] {
			arrow = "↓"
		}
		head = append(head, f+" "+arrow)
	}
	fmt.Fprintln(tw, strings.Join(append(head, "runs", "durability\t"), "\t"))
	for _, r := range t.Rows {
		cells := []string{r.System}
		if r.Runs == 0 {
			for range t.Figures {
				cells = append(cells, "n/a")
			}
			cells = append(cells, "0", r.NA)
		} else {
			for i, v := range r.Values {
				if v == nil {
					cells = append(cells, "—")
				} else {
					cells = append(cells, format(t.Figures[i], float64(*v)))
				}
			}
			cells = append(cells, fmt.Sprint(r.Runs), r.Durability)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	cells := []string{"chute/best peer"}
	any := false
	for _, rt := range t.Ratios {
		if rt == nil {
			cells = append(cells, "—")
			continue
		}
		any = true
		cells = append(cells, fmt.Sprintf("%.2f (%s)", float64(rt.Value), rt.Peer))
	}
	if any {
		fmt.Fprintln(tw, strings.Join(append(cells, "", ""), "\t")+"\t")
	}
	tw.Flush()
	for _, r := range t.Rows {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s: %s\n", r.System, n)
		}
	}
}

// format writes a figure's value for a table: rates in thousands,
// milliseconds and seconds with two decimals, "never" for infinity.
func format(name string, v float64) string {
	switch {
	case math.IsInf(v, 0):
		return "never"
	case strings.HasSuffix(name, "/s"):
		if v >= 1000 {
			return fmt.Sprintf("%.1fk", v/1000)
		}
		return fmt.Sprintf("%.0f", v)
	case strings.HasSuffix(name, " ms"), strings.HasPrefix(name, "s "):
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
