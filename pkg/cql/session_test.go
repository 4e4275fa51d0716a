package cql_test

import (
	"testing"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/cql"
)

// TestSerialConsistencyIsItsOwnSetting is deliver 6 of issue 11: the local data center changes
// routing only; lightweight transactions stay SERIAL unless LOCAL_SERIAL is asked for.
func TestSerialConsistencyIsItsOwnSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     cql.SessionConfig
		want    gocql.SerialConsistency
		wantErr bool
	}{
		{name: "default", cfg: cql.SessionConfig{}, want: gocql.Serial},
		{name: "local DC keeps SERIAL", cfg: cql.SessionConfig{LocalDC: "dc1", Consistency: "LOCAL_QUORUM"}, want: gocql.Serial},
		{name: "LOCAL_SERIAL asked for", cfg: cql.SessionConfig{LocalDC: "dc1", SerialConsistency: "LOCAL_SERIAL"}, want: gocql.LocalSerial},
		{name: "lower case", cfg: cql.SessionConfig{SerialConsistency: "local_serial"}, want: gocql.LocalSerial},
		{name: "SERIAL asked for", cfg: cql.SessionConfig{SerialConsistency: "SERIAL"}, want: gocql.Serial},
		{name: "not a serial level", cfg: cql.SessionConfig{SerialConsistency: "QUORUM"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Hosts = []string{"127.0.0.1:9042"}
			c, err := cql.NewCluster(tc.cfg)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("serial consistency %q accepted", tc.cfg.SerialConsistency)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SerialConsistency != tc.want {
				t.Fatalf("serial consistency %s, want %s", c.SerialConsistency, tc.want)
			}
			if tc.cfg.LocalDC != "" && c.PoolConfig.HostSelectionPolicy == nil {
				t.Fatal("no DC-aware routing")
			}
		})
	}
}
