package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/client"
)

// withClient is withAPI for the commands that need the network client's
// own calls (consumers, alerts).
func withClient(f *clientFlags, fn func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := f.dial(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer c.Close()
		return f.explain(fn(cmd, args, c))
	}
}

func newQueueConsumersCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "consumers QUEUE",
		Short: "Show who consumes from and produces to a queue now, and the leases they hold",
		Long: `consumers lists the clients active on QUEUE: those with a Consume stream open
on it or a PublishStream that published to it, and those that made a unary
call on it (receive, ack, nack, extend; publish) in the last 60 seconds. A
client is the ID it sends (header Chute-Client-Id: the Go client and this
CLI send one), or its address when it sends none. LEASES counts the leases
its Consume streams hold; leases taken with a unary receive are not
counted.`,
		Example:           `  chute queue consumers orders`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withClient(f, func(cmd *cobra.Command, args []string, c *client.Client) error {
			qc, err := c.Consumers(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), consumersJSONOf(args[0], qc))
			}
			return printConsumers(cmd, args[0], qc)
		}),
	}
}

func printConsumers(cmd *cobra.Command, queue string, qc client.QueueConsumers) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s: %d consumer(s), %d producer(s)\n", queue, qc.Consumers, qc.Producers)
	if len(qc.Clients) == 0 {
		return nil
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "CLIENT\tADDRESS\tROLE\tSTREAMS\tLEASES\tPUB/S\tRECV/S\tLAST SEEN")
	for _, cl := range qc.Clients {
		id := cl.ClientID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%s\n", id, cl.Address, roleOf(cl),
			cl.ConsumeStreams+cl.PublishStreams, cl.Leases, cl.PublishRate, cl.ReceiveRate, cl.LastSeen.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func roleOf(cl client.QueueClient) string {
	switch {
	case cl.Consumer && cl.Producer:
		return "consumer,producer"
	case cl.Consumer:
		return "consumer"
	case cl.Producer:
		return "producer"
	}
	return "-"
}

// consumersJSON is the shape of `chute queue consumers --json`.
type consumersJSON struct {
	Queue     string               `json:"queue"`
	Consumers int                  `json:"consumers"`
	Producers int                  `json:"producers"`
	Clients   []consumerClientJSON `json:"clients"`
}

type consumerClientJSON struct {
	ClientID       string    `json:"client_id,omitempty"`
	Address        string    `json:"address"`
	Consumer       bool      `json:"consumer"`
	Producer       bool      `json:"producer"`
	ConsumeStreams int       `json:"consume_streams"`
	PublishStreams int       `json:"publish_streams"`
	Leases         int64     `json:"leases"`
	LastSeen       time.Time `json:"last_seen"`
	PublishRate    float64   `json:"publish_rate"` // messages per second over the last minute
	ReceiveRate    float64   `json:"receive_rate"`
}

func consumersJSONOf(queue string, qc client.QueueConsumers) consumersJSON {
	out := consumersJSON{Queue: queue, Consumers: qc.Consumers, Producers: qc.Producers, Clients: []consumerClientJSON{}}
	for _, cl := range qc.Clients {
		out.Clients = append(out.Clients, consumerClientJSON{ClientID: cl.ClientID, Address: cl.Address,
			Consumer: cl.Consumer, Producer: cl.Producer, ConsumeStreams: cl.ConsumeStreams,
			PublishStreams: cl.PublishStreams, Leases: cl.Leases, LastSeen: cl.LastSeen,
			PublishRate: cl.PublishRate, ReceiveRate: cl.ReceiveRate})
	}
	return out
}
