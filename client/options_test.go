package client

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestTLSOptions(t *testing.T) {
	pool := x509.NewCertPool()
	apply := func(opts ...Option) options {
		var o options
		for _, opt := range opts {
			opt(&o)
		}
		return o
	}
	if o := apply(WithRootCAs(pool)); o.tls == nil || o.tls.RootCAs != pool || o.tls.InsecureSkipVerify {
		t.Fatalf("WithRootCAs alone: %+v", o.tls)
	}
	if o := apply(WithInsecureSkipVerify()); o.tls == nil || !o.tls.InsecureSkipVerify {
		t.Fatalf("WithInsecureSkipVerify alone: %+v", o.tls)
	}
	// After WithTLS they change a copy: the caller's config stays as it was,
	// and its other fields are kept.
	mine := &tls.Config{ServerName: "broker.example"}
	o := apply(WithTLS(mine), WithRootCAs(pool), WithInsecureSkipVerify())
	if o.tls == mine || mine.RootCAs != nil || mine.InsecureSkipVerify {
		t.Fatal("a TLS option changed the caller's *tls.Config")
	}
	if o.tls.ServerName != "broker.example" || o.tls.RootCAs != pool || !o.tls.InsecureSkipVerify {
		t.Fatalf("combined: %+v", o.tls)
	}
}
