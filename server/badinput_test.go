package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

func post(t *testing.T, url, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBadInput: garbage, oversized and invalid requests get a clear error
// with the right code, and the server goes on serving everyone else.
func TestBadInput(t *testing.T) {
	b := chutetest.MustOpen(t, "", &broker.Options{MaxMessageSize: 1000})
	addr := chutetest.StartServer(t, b, server.Options{MaxRequestBytes: 64 << 10})
	base := "http://" + addr
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		status            int
		code, mention     string
	}{
		{"garbage protobuf", "/chute.v1.MessageService/Publish", "application/proto", []byte{0xff, 0xff, 0xff, 0x01}, 400, "invalid_argument", ""},
		{"garbage JSON", "/chute.v1.MessageService/Publish", "application/json", []byte(`{"target": [`), 400, "invalid_argument", ""},
		{"unknown procedure", "/chute.v1.MessageService/Nope", "application/json", []byte(`{}`), 404, "", ""},
		{"oversized request", "/chute.v1.MessageService/Publish", "application/json",
			[]byte(`{"target":"q","messages":[{"body":"` + strings.Repeat("A", 100<<10) + `"}]}`), 429, "resource_exhausted", ""},
		{"message too large", "/chute.v1.MessageService/Publish", "application/json",
			[]byte(`{"target":"q","messages":[{"body":"` + strings.Repeat("A", 2000) + `"}]}`), 400, "invalid_argument", "message too large"},
		{"bad name", "/chute.v1.AdminService/CreateQueue", "application/json", []byte(`{"name":"no spaces"}`), 400, "invalid_argument", "invalid name"},
		{"priority", "/chute.v1.MessageService/Publish", "application/json", []byte(`{"target":"q","messages":[{"priority":12}]}`), 400, "invalid_argument", "priority"},
		{"missing queue", "/chute.v1.MessageService/Receive", "application/json", []byte(`{"queue":"nope"}`), 404, "not_found", "queue not found"},
		{"misspelled field", "/chute.v1.MessageService/Receive", "application/json", []byte(`{"queu":"q"}`), 400, "invalid_argument", `unknown field "queu"`},
		{"misspelled field, charset", "/chute.v1.AdminService/CreateQueue", "application/json; charset=utf-8", []byte(`{"name":"x","confg":{}}`), 400, "invalid_argument", `unknown field "confg"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, base+tc.path, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.code != "" {
				var e struct{ Code, Message string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != tc.code || !strings.Contains(e.Message, tc.mention) {
					t.Fatalf("error body %s: want code %q mentioning %q", body, tc.code, tc.mention)
				}
			}
			// Everyone else is unharmed.
			if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("fine")}); err != nil {
				t.Fatalf("publish after %s: %v", tc.name, err)
			}
		})
	}
}

// TestSlowClientIsCutOff: a client that opens a connection and never
// finishes its request headers is cut off, and meanwhile others are served.
func TestSlowClientIsCutOff(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, server.Options{ReadHeaderTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /chute.v1.AdminService/ListQueues HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Queues(context.Background()); err != nil {
		t.Fatalf("served nobody while a client stalled: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("stalled connection not closed by the server (read %d bytes): %v", n, err)
	}
}
