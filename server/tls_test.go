package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chute test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, server.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, certFile, keyFile) }()
	defer func() {
		srv.Shutdown(context.Background())
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	for _, p := range []client.Protocol{client.ProtocolConnect, client.ProtocolGRPC} {
		c, err := client.Dial(ln.Addr().String(), client.WithTLS(&tls.Config{RootCAs: pool}), client.WithProtocol(p))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		q := "q" + string(rune('a'+p))
		if err := c.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			t.Fatalf("over TLS (protocol %d): %v", p, err)
		}
		if _, err := c.Publish(ctx, q, chute.Message{Body: []byte("secret")}); err != nil {
			t.Fatal(err)
		}
		ds, err := c.Receive(ctx, q, chute.ReceiveOptions{Wait: -1})
		if err != nil || len(ds) != 1 || string(ds[0].Body) != "secret" {
			t.Fatalf("receive over TLS: %v %v", ds, err)
		}
		c.Close()
	}
	// A client that does not trust the certificate is refused.
	c, _ := client.Dial(ln.Addr().String(), client.WithTLS(&tls.Config{}))
	defer c.Close()
	if _, err := c.Queues(context.Background()); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}
