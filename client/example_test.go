package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/server"
)

// serveForExample stands in for `chute serve`: an in-memory broker served
// on a free port of 127.0.0.1.
func serveForExample() (addr string, stop func()) {
	b, err := broker.Open("", nil)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := server.New(b, server.Options{})
	done := make(chan struct{})
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
		close(done)
	}()
	return ln.Addr().String(), func() {
		srv.Shutdown(context.Background())
		<-done
		b.Close()
	}
}

// Publish, receive and ack over the network. The same code runs on an
// embedded broker: replace client.Dial with broker.Open.
func Example() {
	addr, stop := serveForExample() // in real life: `chute serve`, addr "127.0.0.1:7420"
	defer stop()

	var api chute.API
	api, err := client.Dial(addr)
	if err != nil {
		panic(err)
	}
	defer api.Close()
	ctx := context.Background()

	if err := api.CreateQueue(ctx, "jobs", chute.QueueConfig{MaxDeliveries: 5}); err != nil {
		panic(err)
	}
	api.Publish(ctx, "jobs",
		chute.Message{Body: []byte("resize img-1")},
		chute.Message{Body: []byte("resize img-2 (urgent)"), Priority: 9})

	ds, err := api.Receive(ctx, "jobs", chute.ReceiveOptions{Max: 10})
	if err != nil {
		panic(err)
	}
	for _, d := range ds {
		fmt.Printf("%s (delivery %d)\n", d.Body, d.Deliveries)
		api.Ack(ctx, "jobs", d.Receipt)
	}
	// Output:
	// resize img-2 (urgent) (delivery 1)
	// resize img-1 (delivery 1)
}

// A producer batches publishes and confirms each with a future; a runner
// consumes with a handler, acking what it handles and nacking (for retry
// with back-off) what fails.
func ExampleRunner() {
	addr, stop := serveForExample()
	defer stop()
	c, err := client.Dial(addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.CreateQueue(ctx, "emails", chute.QueueConfig{})

	p := client.NewProducer(c, "emails", client.ProducerOptions{})
	for _, to := range []string{"ann@example.com", "bob@example.com"} {
		p.Publish(ctx, chute.Message{Body: []byte(to)})
	}
	if err := p.Close(ctx); err != nil { // flushes: everything is confirmed
		panic(err)
	}

	runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sent := make(chan string, 2)
	r := client.NewRunner(c, "emails", func(ctx context.Context, d chute.Delivery) error {
		sent <- string(d.Body) // send the email; an error here would nack it
		return nil
	}, client.RunnerOptions{Concurrency: 1})
	done := make(chan error)
	go func() { done <- r.Run(runCtx) }()
	fmt.Println(<-sent)
	fmt.Println(<-sent)
	cancel()
	<-done
	// Output:
	// ann@example.com
	// bob@example.com
}
