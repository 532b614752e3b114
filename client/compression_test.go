package client_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestCompressionNegotiated: with compression on, a large publish goes out
// zstd-compressed and the answer to a large receive comes back compressed;
// on loopback the default is off. Either way the bodies arrive intact.
func TestCompressionNegotiated(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []client.Option
		want string
	}{{"on", []client.Option{client.WithCompression(true)}, "zstd"}, {"loopback default", nil, ""}} {
		t.Run(c.name, func(t *testing.T) {
			b := chutetest.MustOpen(t, "", nil)
			srv := server.New(b, server.Options{})
			var mu sync.Mutex
			var reqEnc, respEnc []string
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				reqEnc = append(reqEnc, r.Header.Get("Content-Encoding"))
				mu.Unlock()
				srv.Handler().ServeHTTP(w, r)
				mu.Lock()
				respEnc = append(respEnc, w.Header().Get("Content-Encoding"))
				mu.Unlock()
			})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			hs := &http.Server{Handler: h, Protocols: &p}
			go hs.Serve(ln)
			defer hs.Close()
			cl, err := client.Dial(ln.Addr().String(), c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			body := bytes.Repeat([]byte("compressible "), 1000) // 13 KB
			if err := cl.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Publish(ctx, "q", chute.Message{Body: body}); err != nil {
				t.Fatal(err)
			}
			ds, err := cl.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1})
			if err != nil || len(ds) != 1 || !bytes.Equal(ds[0].Body, body) {
				t.Fatalf("receive: %d messages, %v", len(ds), err)
			}
			mu.Lock()
			defer mu.Unlock()
			// Calls: CreateQueue, Publish, Receive.
			if reqEnc[1] != c.want || respEnc[2] != c.want {
				t.Fatalf("publish request encoding %q, receive response encoding %q; want %q", reqEnc[1], respEnc[2], c.want)
			}
		})
	}
}
