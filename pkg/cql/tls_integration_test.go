package cql_test

import (
	"strings"
	"testing"

	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/cql"
	"github.com/ordersys/ordersys/pkg/cql/cqltest"
	"github.com/ordersys/ordersys/pkg/devpki"
)

// TestSessionOverTLSWithPassword runs against a private Cassandra that speaks only TLS and
// requires a password: a session with its CA and the password works, schema migrations
// included; a plaintext session, a wrong password and a CA that did not sign the node each fail
// with an error that says what is wrong.
func TestSessionOverTLSWithPassword(t *testing.T) {
	n := cqltest.StartSecure(t)

	good := n.SessionConfig()
	s, err := cql.Connect(good)
	if err != nil {
		t.Fatalf("TLS and password: %v", err)
	}
	s.Close()
	migrate := good
	migrate.Keyspace = "secure_ks"
	if _, err := cql.Migrate(t.Context(), cql.MigrateConfig{Session: migrate, Profile: cql.ProfilePortable}); err != nil {
		t.Fatalf("migrate over TLS: %v", err)
	}

	plain := good
	plain.TLS = nil
	if s, err := cql.Connect(plain); err == nil {
		s.Close()
		t.Error("a plaintext session connected to a TLS-only node")
	}

	wrong := good
	wrong.Password = "not-the-password"
	if s, err := cql.Connect(wrong); err == nil {
		s.Close()
		t.Error("a wrong password connected")
	} else if !strings.Contains(err.Error(), "ORDERSYS_CQL_PASSWORD") {
		t.Errorf("wrong password: %v, want an error naming the setting ORDERSYS_CQL_PASSWORD", err)
	}
	none := good
	none.Username, none.Password = "", ""
	if s, err := cql.Connect(none); err == nil {
		s.Close()
		t.Error("a session without a login connected to a node that requires one")
	} else if !strings.Contains(err.Error(), "ORDERSYS_CQL_USERNAME") {
		t.Errorf("no login: %v, want an error naming the setting ORDERSYS_CQL_USERNAME", err)
	}

	other, err := devpki.NewPKI(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	foreign := good
	foreign.TLS = &cql.SessionTLS{CAFile: other.Path("ca.pem")}
	if s, err := cql.Connect(foreign); err == nil {
		s.Close()
		t.Error("a session trusting another CA connected")
	} else {
		t.Logf("a session trusting another CA: %v", err)
	}
}

// TestAnyTLSSettingTurnsTLSOn: no CQL TLS setting leaves a session silently in plaintext.
func TestAnyTLSSettingTurnsTLSOn(t *testing.T) {
	for name, c := range map[string]config.CQL{
		"enabled":                {TLSEnabled: true},
		"CA file":                {TLSCAFile: "ca.pem"},
		"client certificate":     {TLSCertFile: "c.pem", TLSKeyFile: "k.pem"},
		"skip host verification": {TLSSkipHostVerification: true},
	} {
		if cql.SessionConfigFrom(c).TLS == nil {
			t.Errorf("%s: plaintext session", name)
		}
	}
	if cql.SessionConfigFrom(config.CQL{}).TLS != nil {
		t.Error("no TLS setting: TLS on")
	}
}
