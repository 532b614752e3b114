package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/chutemq/chute/server"
)

// A tokens file (chute serve --tokens FILE) lists the tokens the server
// accepts, in YAML or JSON: a list, or an object whose "tokens" is the
// list. Each token has a name (for logs and the audit log), the token
// itself or, better, its SHA-256 in hex (the file then holds no secret),
// a role, and optional publish quotas:
//
//	tokens:
//	  - name: ops
//	    token_sha256: 5e88489…   # chute token hash, or: printf %s "$TOKEN" | sha256sum
//	    role: admin
//	  - name: orders-service
//	    token_sha256: 9f86d08…
//	    role: produce
//	    rate: 500                # messages per second (optional)
//	    bytes_per_second: 4MiB   # request bytes per second (optional; units as for sizes)
//	  - name: dashboard
//	    token: not-so-secret     # a plain token works too
//	    role: read
//
// A key the format does not have is refused, so that a misspelled
// "token_sha265" does not leave a token unusable in silence.

// tokenEntry is one token of a tokens file.
type tokenEntry struct {
	Name           string     `yaml:"name"`
	Token          string     `yaml:"token"`
	TokenSHA256    string     `yaml:"token_sha256"`
	Role           string     `yaml:"role"`
	Rate           float64    `yaml:"rate"`
	BytesPerSecond bytesValue `yaml:"bytes_per_second"`
}

// bytesValue is a size in a tokens file: a number, or a size with units
// ("4MiB", "4MiB/s").
type bytesValue float64

func (b *bytesValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: bytes_per_second: want a size", n.Line)
	}
	v, err := parseSize(strings.TrimSuffix(strings.TrimSpace(n.Value), "/s"))
	if err != nil {
		return fmt.Errorf("line %d: bytes_per_second: %w", n.Line, err)
	}
	*b = bytesValue(v)
	return nil
}

// loadTokens reads a tokens file. Anything wrong with it is a usage
// error naming the file; a file that cannot be read is a plain error.
func loadTokens(path string) ([]server.Token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	tokens, err := parseTokens(data)
	if err != nil {
		return nil, usageError{fmt.Errorf("tokens file %s: %w", path, err)}
	}
	return tokens, nil
}

func parseTokens(data []byte) ([]server.Token, error) {
	var top yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	if len(top.Content) == 0 {
		return nil, errors.New("no tokens")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var entries []tokenEntry
	var err error
	switch top.Content[0].Kind {
	case yaml.SequenceNode:
		err = dec.Decode(&entries)
	case yaml.MappingNode:
		var doc struct {
			Tokens []tokenEntry `yaml:"tokens"`
		}
		err = dec.Decode(&doc)
		entries = doc.Tokens
	default:
		return nil, errors.New("want a list of tokens, or an object with a list in tokens")
	}
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errors.New("no tokens")
	}
	tokens := make([]server.Token, len(entries))
	for i, e := range entries {
		t, err := e.token()
		if err != nil {
			return nil, fmt.Errorf("token %d (%q): %w", i+1, e.Name, err)
		}
		tokens[i] = t
	}
	if err := server.ValidateTokens(tokens); err != nil {
		return nil, err
	}
	return tokens, nil
}

func (e tokenEntry) token() (server.Token, error) {
	t := server.Token{Name: e.Name, Secret: e.Token, Rate: e.Rate, BytesPerSecond: float64(e.BytesPerSecond)}
	if e.TokenSHA256 != "" {
		sum, err := hex.DecodeString(strings.TrimSpace(e.TokenSHA256))
		if err != nil || len(sum) != sha256.Size {
			return server.Token{}, errors.New("token_sha256: want 64 hexadecimal digits (the SHA-256 of the token)")
		}
		t.SHA256 = sum
	}
	role, err := server.ParseRole(e.Role)
	if err != nil {
		return server.Token{}, err
	}
	t.Role = role
	return t, nil
}

// newTokenCmd is chute token: make tokens and tokens-file entries.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make bearer tokens and entries for a tokens file (chute serve --tokens)",
		Long: `token generate prints a new random token. token hash reads a token (from
its argument, or a line of stdin) and prints the tokens-file entry that
admits it, holding only its SHA-256:

  tok=$(chute token generate)
  echo "$tok" | chute token hash --name orders --role produce --rate 500 >> tokens.yaml`,
		Args: noArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Print a new random token: chute_ and 32 random bytes in base64url",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), tokenPrefix+base64.RawURLEncoding.EncodeToString(b[:]))
			return err
		},
	})
	var e tokenEntry
	var bps string
	hash := &cobra.Command{
		Use:   "hash [TOKEN]",
		Short: "Print the tokens-file entry for a token (its SHA-256, never the token)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := tokenArg(cmd.InOrStdin(), args)
			if err != nil {
				return err
			}
			sum := sha256.Sum256([]byte(secret))
			e.TokenSHA256 = hex.EncodeToString(sum[:])
			if bps != "" {
				if err := e.BytesPerSecond.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Value: bps}); err != nil {
					return usageError{err}
				}
			}
			if _, err := e.token(); err != nil {
				return usageError{err}
			}
			return writeTokenEntry(cmd.OutOrStdout(), e)
		},
	}
	hash.Flags().StringVar(&e.Name, "name", "", "the token's name, for logs and the audit log (required)")
	hash.Flags().StringVar(&e.Role, "role", "read", "read, produce, consume or admin")
	hash.Flags().Float64Var(&e.Rate, "rate", 0, "messages per second it may publish (0: no limit)")
	hash.Flags().StringVar(&bps, "bytes-per-second", "", "request bytes per second it may publish, e.g. 4MiB (default: no limit)")
	hash.MarkFlagRequired("name")
	cmd.AddCommand(hash)
	return cmd
}

// tokenPrefix starts every token chute token generate makes: it tells
// what the token is for (and secret scanners can look for it), and a
// token never starts with '-', which a command line would take for a
// flag.
const tokenPrefix = "chute_"

// tokenArg is the token from args or, without one, the first line of in.
func tokenArg(in io.Reader, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", usageError{errors.New("give the token as an argument or on stdin")}
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return "", usageError{errors.New("empty token")}
	}
	return secret, nil
}

// writeTokenEntry prints e as one item of a tokens file's list.
func writeTokenEntry(w io.Writer, e tokenEntry) error {
	item := map[string]any{"name": e.Name, "role": e.Role, "token_sha256": e.TokenSHA256}
	if e.Rate > 0 {
		item["rate"] = e.Rate
	}
	if e.BytesPerSecond > 0 {
		item["bytes_per_second"] = int64(e.BytesPerSecond)
	}
	b, err := yaml.Marshal([]any{item})
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
