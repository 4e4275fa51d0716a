package check

import (
	"slices"
	"testing"
)

// TestHelmRejectsBadValues: values.schema.json and the chart's own checks refuse values that would
// deploy something broken.
func TestHelmRejectsBadValues(t *testing.T) {
	cases := map[string][]string{
		"unknown top-level key":        {"--set", "replicas=3"},
		"typo in a service key":        {"--set", "command.replicas=3"},
		"relay autoscaler (lease)":     {"--set", "cdcRelay.autoscaling.enabled=true"},
		"unknown relay source":         {"--set", "cdcRelay.source=binlog"},
		"scylla-cdc on portable":       {"--set", "cql.profile=portable"},
		"no CQL hosts":                 {"--set-json", "cql.hosts=[]"},
		"sample ratio above 1":         {"--set", "tracing.sampleRatio=2"},
		"ORDERSYS_ var in extraEnv":    {"--set", "query.extraEnv[0].name=ORDERSYS_CQL_HOSTS", "--set", "query.extraEnv[0].value=x"},
		"password and existing secret": {"--set", "cql.password=x", "--set", "cql.existingSecret=y"},
		"shutdown timeout in minutes":  {"--set", "shutdownTimeout=1m"},
		"topic retention 0":            {"--set", "kafka.retentionMs=0"},
		"topic name with a slash":      {"--set", "kafka.topics.order=orders/v1"},
		"empty topic name":             {"--set", "kafka.topics.customer="},
		"unknown SASL mechanism":       {"--set", "kafka.sasl.mechanism=GSSAPI", "--set", "kafka.sasl.username=u", "--set", "kafka.sasl.existingSecret=s"},
		"SASL without a password":      {"--set", "kafka.sasl.mechanism=SCRAM-SHA-256", "--set", "kafka.sasl.username=u"},
		"SASL password as a value":     {"--set", "kafka.sasl.password=x"},
		"Kafka client cert, no Secret": {"--set", "kafka.tls.clientCertificate=true"},
		"cert-manager, unknown key":    {"--set", "grpc.tls.certManager.issuer=ca"},
		"cert-manager, bad duration":   {"--set", "grpc.tls.certManager.duration=90d"},
		"cert-manager, bad key type":   {"--set", "grpc.tls.certManager.privateKey.algorithm=DSA"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := helmTemplate(t, args...); err == nil {
				t.Errorf("helm template %v succeeded, want a values error", args)
			}
		})
	}
}

// TestServiceMonitorNeedsItsAPI: with serviceMonitor.enabled the chart renders a ServiceMonitor
// only when the cluster serves monitoring.coreos.com/v1 ServiceMonitor (here: --api-versions) or
// serviceMonitor.force is set; a group/version alone is not enough. `make k8s-check` checks the
// same against a real API server, with and without the CRDs.
func TestServiceMonitorNeedsItsAPI(t *testing.T) {
	enabled := []string{"--set", "serviceMonitor.enabled=true"}
	cases := map[string]struct {
		args []string
		want int
	}{
		"API not served":             {enabled, 0},
		"only the group/version":     {append(slices.Clone(enabled), "--api-versions", "monitoring.coreos.com/v1"), 0},
		"API served":                 {append(slices.Clone(enabled), "--api-versions", monitoringAPI), 1},
		"forced without the API":     {append(slices.Clone(enabled), "--set", "serviceMonitor.force=true"), 1},
		"API served but not enabled": {[]string{"--api-versions", monitoringAPI}, 0},
		"forced but not enabled":     {[]string{"--set", "serviceMonitor.force=true"}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := len(mustRender(t, tc.args...).monitors); got != tc.want {
				t.Errorf("helm template %v: %d ServiceMonitors, want %d", tc.args, got, tc.want)
			}
		})
	}
}
