package bootstrap

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gocql/gocql"

	"github.com/ordersys/ordersys/pkg/codec"
	"github.com/ordersys/ordersys/pkg/config"
	"github.com/ordersys/ordersys/pkg/es"
	"github.com/ordersys/ordersys/pkg/pii"
)

// Base is what every service's Run builds first: its metrics, served, and its CQL session.
type Base struct {
	Metrics
	// Session is the service's CQL session.
	Session *gocql.Session
	owned   bool
}

// Open serves the service's metrics (ServeMetrics on lns.Metrics or common.MetricsAddr) and
// opens its CQL session (lns.Session, or ConnectCQL with opts). Call Close when Run returns.
func Open(ctx context.Context, service string, common config.Common, lns Listeners, log *slog.Logger, opts ConnectOptions) (Base, error) {
	m, err := ServeMetrics(ctx, service, common.MetricsAddr, lns.Metrics, log)
	if err != nil {
		return Base{}, err
	}
	if lns.Session != nil {
		return Base{Metrics: m, Session: lns.Session}, nil
	}
	s, err := ConnectCQL(ctx, common.CQL, opts)
	if err != nil {
		return Base{}, err
	}
	return Base{Metrics: m, Session: s, owned: true}, nil
}

// Close closes the session unless the caller passed it in Listeners.
func (b Base) Close() {
	if b.owned {
		b.Session.Close()
	}
}

// PersonalData returns the event registry of a service that reads or writes Customer events and
// the key store of their personal data (pii.Setup on s): with a KEK file in cfg the registry
// seals and opens the personal fields through the store. It logs whether encryption is on.
func PersonalData(s *gocql.Session, cfg config.PII, log *slog.Logger) (*es.Registry, *pii.Store, error) {
	events := codec.NewRegistry()
	keys, err := pii.Setup(s, cfg, events)
	if err != nil {
		return nil, nil, fmt.Errorf("personal data encryption: %w", err)
	}
	log.Info("personal data encryption", "enabled", keys.Enabled())
	return events, keys, nil
}
