// Package chute is the vocabulary of the chute message broker: the API
// that applications program against, the messages, deliveries,
// configurations, statistics and errors it speaks of. It has no
// dependencies beyond the standard library, so that a program that only
// talks to a broker over the network (package client) stays small and
// builds everywhere.
//
// Two implementations satisfy API:
//
//   - the embedded broker, package broker: broker.Open(dir, nil) runs a
//     broker in-process on its own journal;
//   - the network client, package client: client.Dial("127.0.0.1:7420")
//     talks to a chute serve.
//
// The same application code, and the same tests, run against either.
//
// # Guarantees
//
// With the default sync policy a Publish, Ack or Nack returns only after
// its record is on disk: nothing confirmed is lost by a crash, and nothing
// acked comes back. Delivery is at-least-once: a message whose lease ends
// without an ack (the consumer crashed, or was too slow) is delivered
// again. Message IDs (de-duplication within a window) and idempotent
// consumers give effectively-once processing.
//
// # Zero values
//
// The zero value of every configuration type works, and in every numeric
// field 0 means "the default" while None (-1, any negative value) means
// "none": no limit, no TTL, no jitter, no de-duplication. See QueueConfig.
//
// # Example
//
//	var api chute.API
//	api, err := client.Dial("127.0.0.1:7420") // or: broker.Open("chute-data", nil)
//	defer api.Close()
//	api.CreateQueue(ctx, "jobs", chute.QueueConfig{MaxDeliveries: 5})
//	api.Publish(ctx, "jobs", chute.Message{Body: []byte("hello")})
//	ds, err := api.Receive(ctx, "jobs", chute.ReceiveOptions{Max: 10})
//	api.Ack(ctx, "jobs", ds[0].Receipt)
package chute
