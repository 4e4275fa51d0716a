package app_test

import (
	"strings"
	"testing"

	"github.com/ordersys/ordersys/services/cdc-relay/internal/app"
)

func TestConfigTopicsAndRetention(t *testing.T) {
	load := func(env map[string]string) (app.Config, error) {
		return app.LoadConfigFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	cfg, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OrderTopic != "order-events" || cfg.CustomerTopic != "customer-events" || cfg.RetentionMs != 7*24*3600*1000 {
		t.Fatalf("defaults: topics %s, %s, retention %d; want order-events, customer-events, 7 days", cfg.OrderTopic, cfg.CustomerTopic, cfg.RetentionMs)
	}
	cfg, err = load(map[string]string{"ORDERSYS_ORDER_TOPIC": "o", "ORDERSYS_CUSTOMER_TOPIC": "c", "ORDERSYS_KAFKA_RETENTION_MS": "86400000"})
	if err != nil || cfg.OrderTopic != "o" || cfg.CustomerTopic != "c" || cfg.RetentionMs != 86400000 {
		t.Fatalf("overrides: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"0", "-2"} {
		if _, err := load(map[string]string{"ORDERSYS_KAFKA_RETENTION_MS": bad}); err == nil || !strings.Contains(err.Error(), "ORDERSYS_KAFKA_RETENTION_MS") {
			t.Errorf("ORDERSYS_KAFKA_RETENTION_MS=%s: err %v, want it refused", bad, err)
		}
	}
	if _, err := load(map[string]string{"ORDERSYS_ORDER_TOPIC": ""}); err == nil {
		t.Error("an empty ORDERSYS_ORDER_TOPIC was accepted")
	}
}
