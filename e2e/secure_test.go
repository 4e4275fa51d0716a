package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/devpki"
	"github.com/ordersys/ordersys/pkg/domain/ids"
	ordersv1 "github.com/ordersys/ordersys/pkg/gen/orders/v1"
	"github.com/ordersys/ordersys/pkg/grpcx"
)

// secureSetup is what a secure system runs on: private TLS-only servers, and the settings that
// turn on TLS and tokens in every service (docs/security.md).
type secureSetup struct {
	cqlHosts []string // the private Cassandra (TLS only, password)
	creds    credentials.TransportCredentials
	token    string // sent with every call of the system's clients
	// secrets are values that must appear in no log of the run.
	secrets map[string]string
}

func (c *secureSetup) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(c.creds),
		grpc.WithPerRPCCredentials(grpcx.BearerToken{Token: c.token})}
}

// secureAudience is the audience of the secure system's tokens.
const secureAudience = "ordersys-e2e"

// TestSecureSystem runs the system the way docs/security.md describes a production deployment
// and drives an order through its life: mutual TLS and tokens on every service, Cassandra
// speaking only TLS with a password; the events travel command → event store → relay → Kafka →
// projector → read model → query. Every service logs at debug level; afterwards no log of the
// run may contain a secret that was set (the Cassandra password, any token, a private key).
func TestSecureSystem(t *testing.T) {
	base := getSystem(t) // skips under -short; its binaries are reused
	dir := t.TempDir()
	pki, err := devpki.NewPKI(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, server := range map[string]bool{"server": true, "client": false} {
		if _, err := pki.Issue(name, server); err != nil {
			t.Fatal(err)
		}
	}
	issuer, err := devpki.NewIssuer(dir, "e2e-secure")
	if err != nil {
		t.Fatal(err)
	}
	token := func(roles ...string) string {
		tok, err := issuer.Token("e2e-user-"+strings.Join(roles, "-"), secureAudience, time.Now().Add(time.Hour), roles...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	creds, err := grpcx.ClientTLS(pki.Path("ca.pem"), pki.Path("client.pem"), pki.Path("client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	node := cqltest.StartSecure(t)
	cqlUser, cqlPassword := "ordersys_e2e", "cql-"+randomHex(16)
	createRole(t, node, cqlUser, cqlPassword)

	setup := &secureSetup{
		cqlHosts: []string{node.Addr},
		creds:    creds,
		token:    token("writer", "reader", "admin"),
		secrets:  map[string]string{"the Cassandra password": cqlPassword},
	}
	s := &system{secure: setup, binDir: base.binDir,
		extraEnv: []string{
			"ORDERSYS_LOG_LEVEL=debug",
			"ORDERSYS_GRPC_TLS_CERT_FILE=" + pki.Path("server.pem"),
			"ORDERSYS_GRPC_TLS_KEY_FILE=" + pki.Path("server-key.pem"),
			"ORDERSYS_GRPC_TLS_CLIENT_CA_FILE=" + pki.Path("ca.pem"),
			"ORDERSYS_AUTH_JWKS_FILE=" + issuer.JWKS,
			"ORDERSYS_AUTH_ISSUER=" + devpki.IssuerURL,
			"ORDERSYS_AUTH_AUDIENCE=" + secureAudience,
			"ORDERSYS_CQL_USERNAME=" + cqlUser,
			"ORDERSYS_CQL_PASSWORD=" + cqlPassword,
			"ORDERSYS_CQL_TLS_CA_FILE=" + node.CAFile,
			"OTEL_EXPORTER_OTLP_HEADERS=x-collector-key=" + otlpHeaderSecret,
		}}
	startSecureKafka(t, s)
	setup.secrets["the clients' token"] = setup.token
	setup.secrets["the OTLP header of OTEL_EXPORTER_OTLP_HEADERS"] = otlpHeaderSecret
	for _, f := range []string{"server-key.pem", "client-key.pem"} {
		setup.secrets["the private key "+f] = pemBody(t, pki.Path(f))
	}

	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if unclean := s.stop(); len(unclean) > 0 {
			t.Errorf("secure system: not a clean stop on SIGTERM: %s", strings.Join(unclean, "; "))
		}
	}
	t.Cleanup(func() {
		if t.Failed() && s.procs != nil {
			s.dumpLogs(t, 40)
		}
		stop()
	})
	if err := s.start(); err != nil {
		t.Fatalf("start the secure system: %v\n%s", err, s.progress.String())
	}
	ctx := context.Background()
	setup.secrets["the key of the personal-data KEK"] = kekKeyValue(t, s.kekFile)

	// The protections answer as documented.
	refusals := []struct {
		what string
		opts []grpc.DialOption
		want codes.Code
	}{
		{"a plaintext client", []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, codes.Unavailable},
		{"a TLS client without a certificate", []grpc.DialOption{grpc.WithTransportCredentials(mustClientTLS(t, pki.Path("ca.pem"), "", ""))}, codes.Unavailable},
		{"no token", []grpc.DialOption{grpc.WithTransportCredentials(creds)}, codes.Unauthenticated},
		{"a reader's token", []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(grpcx.BearerToken{Token: token("reader")})}, codes.PermissionDenied},
	}
	for _, r := range refusals {
		conn, err := grpc.NewClient(s.grpcAddr["command"], r.opts...)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = ordersv1.NewCustomerCommandServiceClient(conn).RegisterCustomer(cctx, &ordersv1.RegisterCustomerRequest{
			CustomerId: ids.New(), Email: "refused@example.com", FirstName: "No", LastName: "Body"})
		cancel()
		_ = conn.Close()
		wantCode(t, r.what, err, r.want)
	}

	// An order through its whole life, seen by the query service through relay, Kafka and
	// projector, with the token's subject as every event's user.
	cctx, cancel, _ := withCorr(ctx)
	customerID := ids.New()
	_, err = s.customers.RegisterCustomer(cctx, &ordersv1.RegisterCustomerRequest{CustomerId: customerID,
		Email: "secure-" + randomHex(3) + "@example.com", FirstName: "Sec", LastName: "Ure"})
	cancel()
	if err != nil {
		t.Fatalf("RegisterCustomer: %v", err)
	}
	d := &driver{t: t, s: s, ctx: ctx}
	m := &orderModel{id: ids.New(), customer: customerID}
	d.create(m, 1)
	d.update(m, 2)
	d.confirm(m)
	d.ship(m)
	d.deliver(m)
	checkOrder(t, s, m)
	hctx, cancel := context.WithTimeout(ctx, callTimeout)
	h, err := s.query.GetOrderHistory(hctx, &ordersv1.GetOrderHistoryRequest{OrderId: m.id})
	cancel()
	if err != nil {
		t.Fatalf("GetOrderHistory: %v", err)
	}
	for _, e := range h.GetEvents() {
		if want := "e2e-user-writer-reader-admin"; e.GetUserId() != want {
			t.Errorf("event %d: user %q, want the token's subject %q", e.GetSequence(), e.GetUserId(), want)
		}
	}

	checkSecureFlows(t, s, m, func(roles ...string) credentials.PerRPCCredentials { return grpcx.BearerToken{Token: token(roles...)} },
		creds, pki.Path)

	// No secret in any log of the run (read after the services stopped and flushed).
	stop()
	logs, err := filepath.Glob(filepath.Join(s.runDir, "*.log"))
	if err != nil || len(logs) < len(serviceNames)+1 { // the services and migrate
		t.Fatalf("logs of the run: %v %v", logs, err)
	}
	debugLines := 0
	for _, path := range logs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		debugLines += strings.Count(string(raw), `"level":"DEBUG"`)
		for what, secret := range setup.secrets {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s appears in %s", what, rel(s.root, path))
			}
		}
	}
	if debugLines == 0 {
		t.Error("no debug line in the logs: the secret check read logs that say nothing")
	}
}

// otlpHeaderSecret is the value of a header the services send their trace collector, a secret
// (collectors authenticate exporters that way) that must never be logged.
var otlpHeaderSecret = "otlp-" + randomHex(16)

// kekKeyValue returns the key material of the KEK file (a Tink keyset in JSON): what would leak
// if the file's content were logged.
func kekKeyValue(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ks struct {
		Key []struct {
			KeyData struct {
				Value string `json:"value"`
			} `json:"keyData"`
		} `json:"key"`
	}
	if err := json.Unmarshal(raw, &ks); err != nil || len(ks.Key) == 0 || len(ks.Key[0].KeyData.Value) < 16 {
		t.Fatalf("KEK file %s: %v (%d keys)", path, err, len(ks.Key))
	}
	return ks.Key[0].KeyData.Value
}

// createRole makes a login role with the password on the node, as its superuser.
func createRole(t *testing.T, node *cqltest.SecureNode, user, password string) {
	t.Helper()
	session, err := cql.Connect(node.SessionConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	err = session.Query(fmt.Sprintf(`CREATE ROLE %s WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = true`, user, password)).Exec()
	if err != nil {
		t.Fatalf("create role %s: %v", user, err)
	}
}

func mustClientTLS(t *testing.T, ca, cert, key string) credentials.TransportCredentials {
	t.Helper()
	c, err := grpcx.ClientTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pemBody returns the base64 body of a PEM file's first block (what would leak if its content
// were logged), without the header lines.
func pemBody(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			body = append(body, line)
		}
	}
	if len(body) == 0 {
		t.Fatalf("%s: no PEM body", path)
	}
	return body[0] // one line of it is enough to recognise it
}
