package check

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Where the chart mounts the Secrets of grpc.tls.existingSecret and grpc.auth.jwksSecret.
const (
	grpcTLSDir  = "/etc/ordersys/grpc-tls"
	grpcAuthDir = "/etc/ordersys/auth"
)

// checkProbes: liveness and startup ask about the process, readiness about the server as a
// whole (NOT_SERVING while a dependency does not answer). On a plaintext gRPC port they are
// native gRPC probes (ordersys.liveness, ""); with gRPC TLS, which the kubelet's gRPC probe
// cannot speak, they are HTTP probes of the metrics port (/healthz, /readyz).
func checkProbes(t *testing.T, sc scenario, ctr corev1.Container, grpcPort int32) {
	t.Helper()
	for kind, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe, "startup": ctr.StartupProbe} {
		if p == nil || p.Exec != nil || p.TCPSocket != nil {
			t.Errorf("%s probe = %+v", kind, p)
			continue
		}
		if sc.grpcTLSSecret != "" {
			want := "/healthz"
			if kind == "readiness" {
				want = "/readyz"
			}
			if p.HTTPGet == nil || p.GRPC != nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "metrics" {
				t.Errorf("%s probe = %+v, want HTTP GET %s on the metrics port (gRPC TLS is on)", kind, p, want)
			}
			continue
		}
		if p.GRPC == nil || p.GRPC.Port != grpcPort || p.HTTPGet != nil {
			t.Errorf("%s probe = %+v, want native grpc on port %d", kind, p, grpcPort)
			continue
		}
		want := livenessService
		if kind == "readiness" {
			want = ""
		}
		if got := ptrValue(p.GRPC.Service); got != want {
			t.Errorf("%s probe checks health service %q, want %q", kind, got, want)
		}
	}
}

// mountedSecret reports whether dir is mounted read-only from a volume of Secret secret.
func mountedSecret(spec corev1.PodSpec, ctr corev1.Container, dir, secret string) (mounted, fromSecret bool) {
	for _, m := range ctr.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		mounted = m.ReadOnly
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && v.Secret.SecretName == secret {
				fromSecret = true
			}
		}
	}
	return mounted, fromSecret
}

// checkGRPCSecurity: the gRPC server speaks TLS (and requires client certificates) and checks
// tokens exactly when the scenario says so, from files of the named Secrets.
func checkGRPCSecurity(t *testing.T, sc scenario, spec corev1.PodSpec, ctr corev1.Container, env map[string]envSource) {
	t.Helper()
	for _, c := range []struct {
		dir, secret string
		vars        map[string]string // variable -> file it must name ("" = must be unset)
	}{
		{grpcTLSDir, sc.grpcTLSSecret, map[string]string{
			"ORDERSYS_GRPC_TLS_CERT_FILE":      "tls.crt",
			"ORDERSYS_GRPC_TLS_KEY_FILE":       "tls.key",
			"ORDERSYS_GRPC_TLS_CLIENT_CA_FILE": map[bool]string{true: "ca.crt"}[sc.grpcClientAuth],
		}},
		{grpcAuthDir, sc.grpcJWKSSecret, map[string]string{"ORDERSYS_AUTH_JWKS_FILE": "jwks.json"}},
	} {
		mounted, fromSecret := mountedSecret(spec, ctr, c.dir, c.secret)
		switch {
		case c.secret != "" && (!mounted || !fromSecret):
			t.Errorf("Secret %s not mounted read-only at %s", c.secret, c.dir)
		case c.secret == "" && mounted:
			t.Errorf("%s mounted although no Secret is named", c.dir)
		}
		for name, file := range c.vars {
			got, want := env[name].value, ""
			if c.secret != "" && file != "" {
				want = c.dir + "/" + file
			}
			if got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	}
}

// piiDir is where the chart mounts the Secret of pii.kekSecret.
const piiDir = "/etc/ordersys/pii"

// checkPIIKEK: with pii.kekSecret, the services that read personal data (command, projector,
// query) have its kek.json mounted read-only and ORDERSYS_PII_KEK_FILE naming it; the relay
// (which forwards ciphertext) and every service without it have neither.
func checkPIIKEK(t *testing.T, sc scenario, service string, spec corev1.PodSpec, ctr corev1.Container, env map[string]envSource) {
	t.Helper()
	reads := slices.Contains([]string{"command", "projector", "query"}, service)
	mounted, fromSecret := mountedSecret(spec, ctr, piiDir, sc.piiKEKSecret)
	want := ""
	switch {
	case sc.piiKEKSecret != "" && reads:
		if !mounted || !fromSecret {
			t.Errorf("KEK Secret %s not mounted read-only at %s", sc.piiKEKSecret, piiDir)
		}
		want = piiDir + "/kek.json"
	case mounted:
		t.Errorf("%s mounted in %s (pii.kekSecret %q)", piiDir, service, sc.piiKEKSecret)
	}
	if got := env["ORDERSYS_PII_KEK_FILE"].value; got != want {
		t.Errorf("ORDERSYS_PII_KEK_FILE = %q, want %q", got, want)
	}
}

// checkTestPodTLS: with gRPC TLS, the `helm test` pod's grpc_health_probe speaks TLS, trusts the
// Secret's ca.crt, checks the Service's name and, with client authentication, presents tls.crt.
func checkTestPodTLS(t *testing.T, sc scenario, spec corev1.PodSpec, service string) {
	t.Helper()
	cmd := spec.Containers[0].Command
	tls := slices.Contains(cmd, "-tls")
	if sc.grpcTLSSecret == "" {
		if tls {
			t.Errorf("helm test pod of %s uses -tls on a plaintext port: %v", service, cmd)
		}
		return
	}
	want := []string{"-tls", "-tls-ca-cert=" + grpcTLSDir + "/ca.crt", "-tls-server-name=" + service}
	if sc.grpcClientAuth {
		want = append(want, "-tls-client-cert="+grpcTLSDir+"/tls.crt", "-tls-client-key="+grpcTLSDir+"/tls.key")
	}
	for _, w := range want {
		if !slices.Contains(cmd, w) {
			t.Errorf("helm test pod of %s: %s missing from %s", service, w, strings.Join(cmd, " "))
		}
	}
	if mounted, fromSecret := mountedSecret(spec, spec.Containers[0], grpcTLSDir, sc.grpcTLSSecret); !mounted || !fromSecret {
		t.Errorf("helm test pod of %s: Secret %s not mounted read-only at %s", service, sc.grpcTLSSecret, grpcTLSDir)
	}
}

// TestMigrateJobUsesCQLTLSWithSystemCAs: cql.tls.enabled without a Secret (a managed cluster
// whose certificate chains to the system's CAs) turned TLS on for the services but not for the
// migration Job, which then spoke plaintext to a TLS-only cluster.
func TestMigrateJobUsesCQLTLSWithSystemCAs(t *testing.T) {
	out, err := helmTemplate(t, "--set", "cql.tls.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	r := decodeStrict(t, out)
	if len(r.jobs) == 0 {
		t.Fatal("no migration Job rendered")
	}
	for _, j := range r.jobs {
		for _, ctr := range j.Spec.Template.Spec.Containers {
			got := ""
			for _, e := range ctr.Env {
				if e.Name == "ORDERSYS_CQL_TLS_ENABLED" {
					got = e.Value
				}
			}
			if got != "true" {
				t.Errorf("Job %s container %s: ORDERSYS_CQL_TLS_ENABLED = %q, want \"true\"", j.Name, ctr.Name, got)
			}
		}
	}
}

// kafkaTLSDir is where the chart mounts the Secret of kafka.tls.existingSecret.
const kafkaTLSDir = "/etc/ordersys/kafka-tls"

// checkKafkaSecurity: the relay and the projector reach the brokers over TLS (the CA of the named
// Secret, mounted read-only) and with SASL (the mechanism and user as values, the password from
// the named Secret) exactly when the scenario says so; the other services get none of it.
func checkKafkaSecurity(t *testing.T, sc scenario, component string, spec corev1.PodSpec, ctr corev1.Container, env map[string]envSource) {
	t.Helper()
	client := component == "cdc-relay" || component == "projector"
	mounted, fromSecret := mountedSecret(spec, ctr, kafkaTLSDir, sc.kafkaTLSSecret)
	ca := env["ORDERSYS_KAFKA_TLS_CA_FILE"].value
	switch {
	case !client:
		for name := range env {
			if strings.HasPrefix(name, "ORDERSYS_KAFKA_TLS_") || strings.HasPrefix(name, "ORDERSYS_KAFKA_SASL_") {
				t.Errorf("%s set in %s, which does not talk to Kafka", name, component)
			}
		}
		if mounted {
			t.Errorf("%s mounted in %s, which does not talk to Kafka", kafkaTLSDir, component)
		}
		return
	case sc.kafkaTLSSecret != "" && (!mounted || !fromSecret):
		t.Errorf("Secret %s not mounted read-only at %s", sc.kafkaTLSSecret, kafkaTLSDir)
	case sc.kafkaTLSSecret != "" && (ca != kafkaTLSDir+"/ca.crt" || env["ORDERSYS_KAFKA_TLS_ENABLED"].value != "true"):
		t.Errorf("ORDERSYS_KAFKA_TLS_CA_FILE = %q, _ENABLED = %q; want %s/ca.crt, true", ca, env["ORDERSYS_KAFKA_TLS_ENABLED"].value, kafkaTLSDir)
	case sc.kafkaTLSSecret == "" && (mounted || ca != ""):
		t.Errorf("Kafka TLS files (%s, %q) without kafka.tls.existingSecret", kafkaTLSDir, ca)
	}
	if got := env["ORDERSYS_KAFKA_SASL_MECHANISM"].value; got != sc.kafkaSASL {
		t.Errorf("ORDERSYS_KAFKA_SASL_MECHANISM = %q, want %q", got, sc.kafkaSASL)
	}
	pw, set := env["ORDERSYS_KAFKA_SASL_PASSWORD"]
	switch {
	case sc.kafkaSASL != "" && (!set || pw.secret != sc.kafkaSASLSecret):
		t.Errorf("ORDERSYS_KAFKA_SASL_PASSWORD from %+v, want Secret %s", pw, sc.kafkaSASLSecret)
	case sc.kafkaSASL != "" && env["ORDERSYS_KAFKA_SASL_USERNAME"].value == "":
		t.Error("ORDERSYS_KAFKA_SASL_USERNAME empty with SASL on")
	case sc.kafkaSASL == "" && set:
		t.Error("ORDERSYS_KAFKA_SASL_PASSWORD set without kafka.sasl.mechanism")
	}
}

// otlpTLSDir is where the chart mounts the Secret of tracing.tls.existingSecret.
const otlpTLSDir = "/etc/ordersys/otlp-tls"

// TestOTLPTLS: with tracing.tls.existingSecret every service trusts the collector's CA from that
// Secret (and presents its client certificate with clientCertificate) through the standard
// OTEL_EXPORTER_OTLP_* variables; the chart refuses the Secret with a plaintext endpoint, and a
// client certificate without a Secret. Before, the chart had no such setting: an https://
// endpoint could only be verified against the system's CAs.
func TestOTLPTLS(t *testing.T) {
	r := mustRender(t, "--set", "tracing.otlpEndpoint=https://otel.observability:4317",
		"--set", "tracing.tls.existingSecret=otlp-ca", "--set", "tracing.tls.clientCertificate=true")
	for _, comp := range []string{"command", "query", "cdc-relay", "projector"} {
		d := r.deployments[comp]
		if d == nil {
			t.Fatalf("no Deployment %s", comp)
		}
		spec := d.Spec.Template.Spec
		if mounted, fromSecret := mountedSecret(spec, spec.Containers[0], otlpTLSDir, "otlp-ca"); !mounted || !fromSecret {
			t.Errorf("%s: Secret otlp-ca not mounted read-only at %s", comp, otlpTLSDir)
		}
		env := resolveEnv(t, r, base, spec.Containers[0])
		for name, file := range map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "ca.crt",
			"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "tls.crt", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "tls.key"} {
			if got, want := env[name].value, otlpTLSDir+"/"+file; got != want {
				t.Errorf("%s: %s = %q, want %q", comp, name, got, want)
			}
		}
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"CA with a plaintext endpoint": {[]string{"--set", "tracing.tls.existingSecret=otlp-ca"},
			"tracing.tls.existingSecret needs an https:// tracing.otlpEndpoint"},
		"client certificate without a Secret": {[]string{"--set", "tracing.otlpEndpoint=https://otel:4317", "--set", "tracing.tls.clientCertificate=true"},
			"tracing.tls.clientCertificate needs tracing.tls.existingSecret"},
	} {
		if _, err := helmTemplate(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: helm template %v: %v, want an error saying %q", name, tc.args, err, tc.want)
		}
	}
	// The production example exports traces over TLS too (every hop protected).
	secure := mustRender(t, "-f", filepath.Join(chartDir(t), "ci", "secure-values.yaml"))
	for _, comp := range []string{"command", "query", "cdc-relay", "projector"} {
		spec := secure.deployments[comp].Spec.Template.Spec
		env := resolveEnv(t, secure, scenarios["secure-values.yaml"], spec.Containers[0])
		if ep := env["ORDERSYS_OTLP_ENDPOINT"].value; !strings.HasPrefix(ep, "https://") {
			t.Errorf("secure-values.yaml: %s exports traces to %q, want an https:// endpoint", comp, ep)
		}
		if got, want := env["OTEL_EXPORTER_OTLP_CERTIFICATE"].value, otlpTLSDir+"/ca.crt"; got != want {
			t.Errorf("secure-values.yaml: %s: OTEL_EXPORTER_OTLP_CERTIFICATE = %q, want %q", comp, got, want)
		}
	}
	// Without the setting nothing is mounted and the variables are not set.
	plain := mustRender(t)
	spec := plain.deployments["command"].Spec.Template.Spec
	if mounted, _ := mountedSecret(spec, spec.Containers[0], otlpTLSDir, ""); mounted {
		t.Errorf("%s mounted without tracing.tls.existingSecret", otlpTLSDir)
	}
	if got := resolveEnv(t, plain, base, spec.Containers[0])["OTEL_EXPORTER_OTLP_CERTIFICATE"].value; got != "" {
		t.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE = %q without tracing.tls.existingSecret", got)
	}
}
