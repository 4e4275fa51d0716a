package tlsfiles_test

import (
	"crypto/tls"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ordersys/ordersys/pkg/devpki"
	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// TestClientCertificateIsReadAgainAfterRotation renews the client certificate in its files (as
// cert-manager does in a mounted Secret) while a client configuration is in use: the next
// handshake presents the new certificate, without a new configuration. Before, ClientConfig
// read the files once and kept presenting the old certificate until the process restarted.
func TestClientCertificateIsReadAgainAfterRotation(t *testing.T) {
	pki, err := devpki.NewPKI(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue("server", true); err != nil {
		t.Fatal(err)
	}
	first, err := pki.Issue("client", false)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.LoadX509KeyPair(pki.Path("server.pem"), pki.Path("server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := tlsfiles.CertPool(pki.Path("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: cas,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	presented := make(chan int64, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err == nil {
				presented <- tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
			} else {
				presented <- -1
			}
			_ = c.Close()
		}
	}()

	cfg, err := tlsfiles.ClientConfig(pki.Path("ca.pem"), pki.Path("client.pem"), pki.Path("client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func() int64 {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		select {
		case serial := <-presented:
			return serial
		case <-time.After(5 * time.Second):
			t.Fatal("the server saw no handshake")
			return 0
		}
	}
	if got := dial(); got != first {
		t.Fatalf("first handshake presented serial %d, want %d", got, first)
	}

	renewed, err := pki.Issue("client", false) // new files under the same names
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	for _, f := range []string{"client.pem", "client-key.pem"} {
		if err := os.Chtimes(pki.Path(f), later, later); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the files are checked at most once a second
	if got := dial(); got != renewed {
		t.Fatalf("handshake after the renewal presented serial %d, want the renewed %d (the first was %d)", got, renewed, first)
	}
}
