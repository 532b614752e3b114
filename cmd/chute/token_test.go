package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestTokensFile: a tokens file in YAML (a list, or an object with a
// list in tokens) or JSON gives the server its tokens, with roles,
// quotas (bytes with units) and hashes.
func TestTokensFile(t *testing.T) {
	sum := sha256.Sum256([]byte("ops-secret"))
	hexSum := strings.ToUpper(hex.EncodeToString(sum[:])) // either case
	files := map[string]string{
		"list.yaml": `
- name: ops
  token_sha256: ` + hexSum + `
  role: admin
- name: orders
  token: orders-secret
  role: produce
  rate: 500
  bytes_per_second: 4MiB/s
`,
		"object.yml": `tokens:
  - {name: ops, token_sha256: "` + hexSum + `", role: ADMIN}
  - {name: orders, token: orders-secret, role: produce, rate: 500, bytes_per_second: 4194304}
`,
		"tokens.json": `{"tokens": [
  {"name": "ops", "token_sha256": "` + hexSum + `", "role": "admin"},
  {"name": "orders", "token": "orders-secret", "role": "produce", "rate": 500, "bytes_per_second": "4 MiB"}
]}`,
	}
	for name, content := range files {
		tokens, err := loadTokens(writeFile(t, name, content))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(tokens) != 2 {
			t.Fatalf("%s: %d tokens", name, len(tokens))
		}
		ops, orders := tokens[0], tokens[1]
		if ops.Name != "ops" || ops.Role != server.RoleAdmin || !bytes.Equal(ops.SHA256, sum[:]) || ops.Secret != "" {
			t.Errorf("%s: ops %+v", name, ops)
		}
		if orders.Name != "orders" || orders.Role != server.RoleProduce || orders.Secret != "orders-secret" ||
			orders.Rate != 500 || orders.BytesPerSecond != 4<<20 {
			t.Errorf("%s: orders %+v", name, orders)
		}
	}
}

// TestTokensFileRefused: a tokens file with a mistake is a usage error
// that says what is wrong; a file that is not there is a plain error.
func TestTokensFileRefused(t *testing.T) {
	for content, mention := range map[string]string{
		"":                                    "no tokens",
		"tokens: []":                          "no tokens",
		"42":                                  "want a list",
		"- name: a\n  token: x\n  role: boss": "role",
		"- name: a\n  token: x\n  rol: read":  "rol",
		"- name: a\n  token: x\n  role: read\n  token_sha265: ab":                   "token_sha265",
		"- name: a\n  token_sha256: abc\n  role: read":                              "64 hexadecimal",
		"- name: a\n  role: read":                                                   "either the token or its SHA-256",
		"- name: a\n  token: x\n  role: read\n- name: a\n  token: y\n  role: read":  "name used twice",
		"- name: a\n  token: x\n  role: read\n- name: b\n  token: x\n  role: admin": "same token",
		"- name: a\n  token: x\n  role: read\n  bytes_per_second: lots":             "bytes_per_second",
		"- name: a\n  token: x\n  role: read\n  rate: -3":                           "negative",
		"tokens:\n  - name: a\n    token: x\n    role: read\nextra: 1":              "extra",
	} {
		_, err := loadTokens(writeFile(t, "tokens.yaml", content))
		if exitCode(err) != 2 || !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: %v (exit %d), want a usage error mentioning %q", content, err, exitCode(err), mention)
		}
	}
	if _, err := loadTokens(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || exitCode(err) != 1 {
		t.Errorf("missing file: %v (exit %d), want exit 1", err, exitCode(err))
	}
}

// TestServeTokensFlags: --tokens counts as a token for listening beyond
// loopback and reaches the server's options; the in-flight budgets are
// worked out from the memory budget unless given; --print-config shows
// the tokens file's name (it is no secret).
func TestServeTokensFlags(t *testing.T) {
	isolateEnv(t)
	tokens := writeFile(t, "tokens.yaml", "- {name: a, token: x, role: read}\n")
	f, err := serveSettings(t, "--listen", "0.0.0.0:7420", "--tokens", tokens, "--memory-budget", "128MiB")
	if err != nil {
		t.Fatal(err)
	}
	_, so, err := f.options()
	if err != nil {
		t.Fatalf("--tokens on 0.0.0.0: %v", err)
	}
	if len(so.Tokens) != 1 || so.Tokens[0].Name != "a" || so.MaxInflightBytes != 256<<20 || so.MaxConnInflightBytes != 64<<20 {
		t.Fatalf("server options %+v", so)
	}
	for _, tc := range []struct {
		args            []string
		global, perConn int64
	}{
		{[]string{"--memory-budget", "none"}, 64 << 20, 16 << 20},
		{[]string{"--memory-budget", "8MiB"}, 64 << 20, 16 << 20},
		{[]string{"--max-inflight-bytes", "1GiB"}, 1 << 30, 256 << 20},
		{[]string{"--max-inflight-bytes", "auto", "--max-conn-inflight-bytes", "10MiB"}, 128 << 20, 10 << 20},
	} {
		f, err := serveSettings(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if _, so, err := f.options(); err != nil || so.MaxInflightBytes != tc.global || so.MaxConnInflightBytes != tc.perConn {
			t.Errorf("%v: %d, %d (%v), want %d, %d", tc.args, so.MaxInflightBytes, so.MaxConnInflightBytes, err, tc.global, tc.perConn)
		}
	}
	if _, err := serveSettings(t, "--max-inflight-bytes", "0", "--print-config"); exitCode(err) != 2 {
		t.Errorf("--max-inflight-bytes 0: %v, want a usage error", err)
	}
	for _, file := range []string{"- {name: token, token: x, role: read}\n", "- {name: a, token: s3cret, role: read}\n"} {
		clash := writeFile(t, "clash.yaml", file)
		if _, err := runTree(t, context.Background(), io.Discard, "serve", "--print-config", "--tokens", clash, "--token", "s3cret"); exitCode(err) != 2 {
			t.Errorf("--token s3cret with %q: %v (exit %d), want 2", file, err, exitCode(err))
		}
	}
	bad := writeFile(t, "bad.yaml", "- {name: a, role: read}\n")
	if _, err := runTree(t, context.Background(), io.Discard, "serve", "--print-config", "--tokens", bad); exitCode(err) != 2 {
		t.Errorf("--print-config with a bad tokens file: %v (exit %d), want 2", err, exitCode(err))
	}
	out, err := runTree(t, context.Background(), io.Discard, "serve", "--print-config", "--tokens", tokens, "--token", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "tokens: "+tokens) || strings.Contains(out, "s3cret") || !strings.Contains(out, "max-inflight-bytes: auto") {
		t.Errorf("--print-config:\n%s", out)
	}
}

// TestServeTokensAndAuditLog runs chute serve in-process with a tokens
// file and --audit-log: roles hold, and the admin actions are JSON lines
// in the audit file, with the token's name and never its secret.
func TestServeTokensAndAuditLog(t *testing.T) {
	isolateEnv(t)
	tokens := writeFile(t, "tokens.yaml", `
- {name: ops, token: ops-secret, role: admin}
- {name: viewer, token: view-secret, role: read}
`)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	addr, logs, stop := serveJSON(t, "--tokens", tokens, "--audit-log", audit)
	cctx := chutetest.Ctx(t)
	ops, err := client.Dial(addr, client.WithToken("ops-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	viewer, err := client.Dial(addr, client.WithToken("view-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	if err := ops.CreateQueue(cctx, "jobs", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.Queues(cctx); err != nil {
		t.Fatalf("viewer lists: %v", err)
	}
	if err := viewer.DeleteQueue(cctx, "jobs"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("viewer deletes: %v, want PermissionDenied", err)
	}
	if _, err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct{ Msg, Token, Action, Target, Result string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg != "audit" {
			t.Fatalf("audit line %q: %v", line, err)
		}
		got = append(got, rec.Token+" "+rec.Action+" "+rec.Target+" "+rec.Result)
	}
	want := []string{"ops CreateQueue jobs ok", "viewer DeleteQueue  permission_denied"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(string(raw), "secret") || strings.Contains(logs.String(), `"msg":"audit"`) {
		t.Errorf("audit file:\n%s\nmain log:\n%s", raw, logs)
	}
	if info, err := os.Stat(audit); err == nil && info.Mode().Perm()&0o077 != 0 {
		t.Errorf("audit log mode %v, want it private", info.Mode().Perm())
	}
}

// TestTokenCommand: chute token generate makes a fresh random token; chute
// token hash turns one into a tokens-file entry that admits it.
func TestTokenCommand(t *testing.T) {
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		cmd := newTokenCmd()
		cmd.SetArgs(args)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		return out.String(), err
	}
	a, err := run("", "generate")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := run("", "generate")
	tok := strings.TrimSpace(a)
	if len(tok) != len("chute_")+43 || !strings.HasPrefix(tok, "chute_") || tok == strings.TrimSpace(b) {
		t.Fatalf("generate: %q then %q", a, b)
	}
	for _, args := range [][]string{{"hash", "--name", "orders", "--role", "produce", "--rate", "50", "--bytes-per-second", "1MiB"},
		{"hash", "--name", "orders", "--role", "produce", "--rate", "50", "--bytes-per-second", "1MiB", tok}} {
		entry, err := run(tok+"\n", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.Contains(entry, tok) {
			t.Fatalf("the entry holds the token:\n%s", entry)
		}
		tokens, err := parseTokens([]byte(entry))
		if err != nil {
			t.Fatalf("entry %q: %v", entry, err)
		}
		sum := sha256.Sum256([]byte(tok))
		if got := tokens[0]; got.Name != "orders" || got.Role != server.RoleProduce || got.Rate != 50 || got.BytesPerSecond != 1<<20 ||
			!bytes.Equal(got.SHA256, sum[:]) {
			t.Fatalf("entry %+v", got)
		}
	}
	for _, args := range [][]string{{"hash", "--role", "read"}, {"hash", "--name", "x", "--role", "root"}} {
		if _, err := run(tok+"\n", args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := run("", "hash", "--name", "x"); exitCode(err) != 2 {
		t.Errorf("hash without a token: %v", err)
	}
}
