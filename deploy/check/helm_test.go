package check

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The chart rendered for every ci/*-values.yaml scenario, and what each rendering must hold.

// scenario is what a values file must render. Every helm/ordersys/ci/*-values.yaml needs an entry
// here, so a new scenario comes with its expectations.
type scenario struct {
	hpa             bool   // command and query have HorizontalPodAutoscalers
	serviceMonitor  bool   // a ServiceMonitor is rendered
	networkPolicy   bool   // NetworkPolicies are rendered
	existingSecret  string // CQL credentials come from this Secret (not rendered)
	userKey         string // key of the username in the credentials Secret
	passKey         string // key of the password
	serviceAccount  string // name the pods run as ("" = the chart's own, created)
	relaySource     string
	profile         string
	noPDB           []string // components rendered without a PodDisruptionBudget
	cqlTLSSecret    string   // the Secret of the CQL TLS files ("" = plaintext)
	grpcTLSSecret   string   // the Secret of the gRPC server's TLS files ("" = plaintext)
	grpcClientAuth  bool     // the gRPC servers require client certificates
	grpcCertManager bool     // grpcTLSSecret is written by cert-manager for a rendered Certificate
	// clientCertManager are the stores ("cql", "kafka") whose client certificate cert-manager
	// issues, into cqlTLSSecret and kafkaTLSSecret.
	clientCertManager []string
	grpcJWKSSecret    string // the Secret of the token signers' JWKS ("" = no tokens)
	piiKEKSecret      string // the Secret of the personal-data KEK ("" = plaintext)
	kafkaTLSSecret    string // the Secret of the Kafka CA ("" = plaintext to the brokers)
	kafkaSASL         string // the SASL mechanism of the relay and the projector ("" = none)
	kafkaSASLSecret   string // the existing Secret holding its password (key "password")
}

var base = scenario{hpa: true, networkPolicy: true, userKey: "username", passKey: "password",
	relaySource: "scylla-cdc", profile: "scylla"}

func with(f func(*scenario)) scenario { s := base; f(&s); return s }

var scenarios = map[string]scenario{
	"(chart defaults)":       base,
	"default-values.yaml":    base,
	"scylla-cdc-values.yaml": base,
	"portable-values.yaml":   with(func(s *scenario) { s.relaySource, s.profile, s.networkPolicy = "outbox-poll", "portable", false }),
	"existing-secret-values.yaml": with(func(s *scenario) {
		s.existingSecret, s.userKey, s.passKey, s.serviceAccount = "scylla-credentials", "user", "pass", "ordersys-workload"
	}),
	"hpa-off-values.yaml":        with(func(s *scenario) { s.hpa, s.noPDB = false, []string{"query"} }),
	"servicemonitor-values.yaml": with(func(s *scenario) { s.serviceMonitor = true }),
	"cql-tls-values.yaml":        with(func(s *scenario) { s.cqlTLSSecret = "cql-tls" }),
	// The production example: every hop protected, every secret from an existing Secret.
	"secure-values.yaml": with(func(s *scenario) {
		s.grpcTLSSecret, s.grpcClientAuth, s.grpcJWKSSecret = "grpc-tls", true, "grpc-auth"
		s.piiKEKSecret = "ordersys-pii-kek"
		s.cqlTLSSecret, s.existingSecret = "cql-tls", "ordersys-cql"
		s.kafkaTLSSecret, s.kafkaSASL, s.kafkaSASLSecret = "kafka-tls", "SCRAM-SHA-512", "kafka-sasl"
	}),
	"cert-manager-values.yaml": with(func(s *scenario) {
		s.grpcTLSSecret, s.grpcClientAuth, s.grpcJWKSSecret, s.grpcCertManager = fullname+"-grpc-tls", true, "grpc-auth", true
		s.cqlTLSSecret, s.kafkaTLSSecret = fullname+"-cql-client-tls", fullname+"-kafka-client-tls"
		s.clientCertManager = []string{"cql", "kafka"}
	}),
}

func TestHelmScenarios(t *testing.T) {
	c := loadContract(t)
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in the chart: %v", err)
	}
	runs := map[string][]string{"(chart defaults)": {"--api-versions", monitoringAPI}}
	for _, f := range files {
		runs[filepath.Base(f)] = []string{"-f", f, "--api-versions", monitoringAPI}
	}
	for name, args := range runs {
		sc, ok := scenarios[name]
		if !ok {
			t.Errorf("ci/%s has no entry in scenarios (helm_test.go): add its expectations", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := helmTemplate(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			checkRendering(t, c, sc, decodeStrict(t, out))
		})
	}
}

func checkRendering(t *testing.T, c contract, sc scenario, r *rendered) {
	for _, o := range r.all {
		for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"} {
			if o.GetLabels()[l] == "" {
				t.Errorf("%s: no label %s", o.GetName(), l)
			}
		}
	}

	// ServiceAccount the pods run as.
	saName := fullname
	if sc.serviceAccount != "" {
		saName = sc.serviceAccount
		if len(r.serviceAccounts) != 0 {
			t.Errorf("serviceAccount.create=false, yet ServiceAccounts %v are rendered", keys(r.serviceAccounts))
		}
	} else if sa := r.serviceAccounts[saName]; sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("want ServiceAccount %s with automountServiceAccountToken: false, got %+v", saName, sa)
	}

	if got, want := keys(r.deployments), c.serviceNames(); !slices.Equal(got, want) {
		t.Fatalf("Deployments for components %v, want %v", got, want)
	}
	for _, name := range c.serviceNames() {
		t.Run(name, func(t *testing.T) {
			d := r.deployments[name]
			entry := c.Services[name]
			podLabels := labels.Set(d.Spec.Template.Labels)
			if d.Name != fullname+"-"+name {
				t.Errorf("Deployment name %s, want %s-%s", d.Name, fullname, name)
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(podLabels) {
				t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector, podLabels)
			}
			spec := d.Spec.Template.Spec
			checkPodSecurity(t, d.Name, spec)
			if spec.ServiceAccountName != saName {
				t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, saName)
			}
			if len(spec.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(spec.Containers))
			}
			ctr := spec.Containers[0]
			if want := []string{"/usr/local/bin/" + name}; !slices.Equal(ctr.Command, want) {
				t.Errorf("command = %v, want %v", ctr.Command, want)
			}
			if p := containerPort(ctr, "grpc"); p != entry.GRPCPort {
				t.Errorf("container port grpc = %d, want %d", p, entry.GRPCPort)
			}
			if p := containerPort(ctr, "metrics"); p != entry.MetricsPort {
				t.Errorf("container port metrics = %d, want %d", p, entry.MetricsPort)
			}
			checkProbes(t, sc, ctr, entry.GRPCPort)

			// Environment: every required variable set, nothing this service does not read.
			env := resolveEnv(t, r, sc, ctr)
			checkEnvNames(t, ordersysNames(env), c.serviceEnv(name), c.optional(name))
			checkSecretSources(t, c, env)
			checkCQLTLS(t, sc, spec, ctr, env)
			checkGRPCSecurity(t, sc, spec, ctr, env)
			checkPIIKEK(t, sc, name, spec, ctr, env)
			checkKafkaSecurity(t, sc, name, spec, ctr, env)
			if got, want := env["ORDERSYS_GRPC_ADDR"].value, fmt.Sprintf("0.0.0.0:%d", entry.GRPCPort); got != want {
				t.Errorf("ORDERSYS_GRPC_ADDR = %q, want %q", got, want)
			}
			if got, want := env["ORDERSYS_METRICS_ADDR"].value, fmt.Sprintf("0.0.0.0:%d", entry.MetricsPort); got != want {
				t.Errorf("ORDERSYS_METRICS_ADDR = %q, want %q", got, want)
			}
			for _, v := range []string{"ORDERSYS_CQL_HOSTS", "ORDERSYS_CQL_KEYSPACE", "ORDERSYS_CQL_CONSISTENCY", "ORDERSYS_KAFKA_BROKERS"} {
				if e, ok := env[v]; ok && e.value == "" {
					t.Errorf("%s is empty", v)
				}
			}
			if name == "cdc-relay" && env["ORDERSYS_RELAY_SOURCE"].value != sc.relaySource {
				t.Errorf("ORDERSYS_RELAY_SOURCE = %q, want %q", env["ORDERSYS_RELAY_SOURCE"].value, sc.relaySource)
			}

			// Service: selects these pods, exposes grpc and metrics.
			svc := r.services[d.Name]
			if svc == nil {
				t.Fatalf("no Service %s", d.Name)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
				t.Errorf("Service selector %v does not match the pods", svc.Spec.Selector)
			}
			if servicePort(svc, "grpc") != entry.GRPCPort || servicePort(svc, "metrics") != entry.MetricsPort {
				t.Errorf("Service ports %+v, want grpc %d and metrics %d", svc.Spec.Ports, entry.GRPCPort, entry.MetricsPort)
			}

			// Autoscaling: command and query only; replicas left to the HPA when it exists.
			hpa := r.hpas[d.Name]
			wantHPA := sc.hpa && (name == "command" || name == "query")
			switch {
			case wantHPA && hpa == nil:
				t.Error("no HorizontalPodAutoscaler")
			case !wantHPA && hpa != nil:
				t.Errorf("unexpected HorizontalPodAutoscaler %s", hpa.Name)
			case hpa != nil && (hpa.Spec.ScaleTargetRef.Kind != "Deployment" || d.Spec.Replicas != nil):
				t.Errorf("HPA target %+v; Deployment replicas %v (must be unset under an HPA)", hpa.Spec.ScaleTargetRef, d.Spec.Replicas)
			case hpa == nil && d.Spec.Replicas == nil:
				t.Error("no HPA and no replicas")
			}

			// PodDisruptionBudget.
			pdbs := 0
			for _, p := range r.pdbs {
				if s, _ := metav1.LabelSelectorAsSelector(p.Spec.Selector); s.Matches(podLabels) {
					pdbs++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[slices.Contains(sc.noPDB, name)]; pdbs != want {
				t.Errorf("%d PodDisruptionBudgets select the pods, want %d", pdbs, want)
			}

			// NetworkPolicy: selects the pods and opens the gRPC port.
			var np *networkingv1.NetworkPolicy
			for _, p := range r.netpols {
				if s, _ := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector); s.Matches(podLabels) {
					np = p
				}
			}
			if sc.networkPolicy != (np != nil) {
				t.Errorf("NetworkPolicy rendered = %v, want %v", np != nil, sc.networkPolicy)
			}
			if np != nil && !ingressOpens(np, "grpc") {
				t.Errorf("NetworkPolicy %s does not open the grpc port", np.Name)
			}

			// helm test: a hook pod calling this Service's gRPC health check.
			addr := fmt.Sprintf("-addr=%s:%d", svc.Name, entry.GRPCPort)
			found := false
			for _, p := range r.pods {
				if p.Annotations["helm.sh/hook"] == "test" && len(p.Spec.Containers) == 1 &&
					slices.Equal(p.Spec.Containers[0].Command[:2], []string{"/usr/local/bin/grpc_health_probe", addr}) {
					found = true
					checkTestPodTLS(t, sc, p.Spec, svc.Name)
				}
			}
			if !found {
				t.Errorf("no `helm test` pod running grpc_health_probe %s", addr)
			}
		})
	}

	t.Run("one-value-per-variable", func(t *testing.T) {
		envs := map[string]map[string]string{}
		for _, name := range c.serviceNames() {
			d := r.deployments[name]
			if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
				continue // reported above
			}
			envs[name] = map[string]string{}
			for k, e := range resolveEnv(t, r, sc, d.Spec.Template.Spec.Containers[0]) {
				if strings.HasPrefix(k, "ORDERSYS_") {
					envs[name][k] = e.value + e.secret
				}
			}
		}
		checkOneValuePerVariable(t, envs)
	})

	t.Run("migrate", func(t *testing.T) {
		if len(r.jobs) != 1 {
			t.Fatalf("want one Job (migrate), got %d", len(r.jobs))
		}
		j := r.jobs[0]
		if got := j.Annotations["helm.sh/hook"]; got != "pre-install,pre-upgrade" {
			t.Errorf("helm.sh/hook = %q, want pre-install,pre-upgrade", got)
		}
		spec := j.Spec.Template.Spec
		checkPodSecurity(t, j.Name, spec)
		if spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy = %q, want Never", spec.RestartPolicy)
		}
		ctr := spec.Containers[0]
		if !slices.Equal(ctr.Command, []string{"/usr/local/bin/migrate"}) {
			t.Errorf("command = %v, want /usr/local/bin/migrate", ctr.Command)
		}
		env := resolveEnv(t, r, sc, ctr)
		checkEnvNames(t, ordersysNames(env), c.jobEnv("migrate"), c.optional("migrate"))
		checkSecretSources(t, c, env)
		checkCQLTLS(t, sc, spec, ctr, env)
		if got := env["ORDERSYS_CQL_PROFILE"].value; got != sc.profile {
			t.Errorf("ORDERSYS_CQL_PROFILE = %q, want %q", got, sc.profile)
		}
		// At pre-install nothing but hooks exists: the credentials must be an existing Secret or a
		// hook Secret created before the Job.
		if sc.existingSecret == "" {
			s := r.secrets[env["ORDERSYS_CQL_PASSWORD"].secret]
			if s == nil || s.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" ||
				hookWeight(s.Annotations) >= hookWeight(j.Annotations) {
				t.Errorf("the Job reads Secret %q, which is not a pre-install hook weighted before the Job",
					env["ORDERSYS_CQL_PASSWORD"].secret)
			}
		}
	})

	t.Run("test-hooks", func(t *testing.T) {
		if len(r.pods) != len(c.Services) {
			t.Errorf("%d test pods, want one per service (%d)", len(r.pods), len(c.Services))
		}
		for _, p := range r.pods {
			if p.Annotations["helm.sh/hook"] != "test" {
				t.Errorf("pod %s is not a helm test hook", p.Name)
			}
			checkPodSecurity(t, p.Name, p.Spec)
		}
	})

	t.Run("certificate", func(t *testing.T) { checkCertificate(t, sc, r) })

	t.Run("servicemonitor", func(t *testing.T) {
		if got := len(r.monitors) == 1; got != sc.serviceMonitor {
			t.Fatalf("%d ServiceMonitors, want enabled=%v", len(r.monitors), sc.serviceMonitor)
		}
		if !sc.serviceMonitor {
			return
		}
		m := r.monitors[0]
		sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		selected := 0
		for _, svc := range r.services {
			if sel.Matches(labels.Set(svc.Labels)) {
				selected++
				if servicePort(svc, m.Spec.Endpoints[0].Port) == 0 {
					t.Errorf("Service %s has no port %q", svc.Name, m.Spec.Endpoints[0].Port)
				}
			}
		}
		if selected != len(c.Services) || m.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor selects %d Services (want %d), path %q", selected, len(c.Services), m.Spec.Endpoints[0].Path)
		}
	})
}
