package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/internal/cluster"
)

// newClusterCmd: `chute cluster status`, a replicated cluster as one of
// its nodes sees it (issue 12; docs/replication.md).
func newClusterCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "cluster", Short: "a replicated cluster's members and leader"}
	f.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "members, leader, term, commit and each member's lag, as the node at --server sees them",
		Long: `status asks the node at --server (any member) for its view of the cluster:
the leader and term, its commit and applied indexes and snapshot, and the
members (voters and learners). Asked of the leader, each member's match
index and lag (the commit index minus the match) are known too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.clusterInfo()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				e := json.NewEncoder(out)
				e.SetIndent("", "  ")
				return e.Encode(in)
			}
			leader := "none known"
			if in.Leader != 0 {
				leader = fmt.Sprint(in.Leader)
			}
			fmt.Fprintf(out, "node %d: leader %s, term %d, commit %d, applied %d, snapshot at %d, leaders seen %d, snapshots restored %d\n",
				in.ID, leader, in.Term, in.Commit, in.Applied, in.Snapshot, in.LeaderChanges, in.Restores)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tMATCH\tLAG")
			for _, m := range in.Members {
				role := "learner"
				switch {
				case m.Leading:
					role = "leader"
				case m.Voter:
					role = "voter"
				}
				match, lag := "-", "-"
				if in.IsLeader {
					match, lag = fmt.Sprint(m.Match), fmt.Sprint(m.Lag)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.ID, m.Addr, role, match, lag)
			}
			return tw.Flush()
		},
	})
	return cmd
}

// clusterInfo GETs the node's cluster.StatusPath.
func (f *clientFlags) clusterInfo() (cluster.Info, error) {
	addr, token := f.serverAndToken()
	target, err := parseServerAddr(addr)
	if err != nil {
		return cluster.Info{}, usageError{err}
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + target.hostport
	if target.scheme == "https" || f.tlsCA != "" || f.tlsInsecure {
		cfg := &tls.Config{InsecureSkipVerify: f.tlsInsecure} //nolint:gosec // only with --tls-insecure-skip-verify
		if f.tlsCA != "" {
			pool, err := loadCA(f.tlsCA)
			if err != nil {
				return cluster.Info{}, usageError{err}
			}
			cfg.RootCAs = pool
		}
		hc.Transport = &http.Transport{TLSClientConfig: cfg}
		base = "https://" + target.hostport
	}
	req, err := http.NewRequest(http.MethodGet, base+cluster.StatusPath, nil)
	if err != nil {
		return cluster.Info{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return cluster.Info{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return cluster.Info{}, fmt.Errorf("%s is not a cluster node (serve without --cluster-peers)", addr)
	default:
		return cluster.Info{}, fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	var in cluster.Info
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return cluster.Info{}, fmt.Errorf("%s: %w", addr, err)
	}
	return in, nil
}
