package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const (
	release = "ordersys"
	// kubeVersion is passed to helm: one built with `go install` reports v1.20 otherwise, and the
	// chart needs >= 1.27 (native gRPC probes). Keep in step with DEPLOY_KUBE_VERSION (mk/deploy.mk).
	kubeVersion = "1.33.0"
	namespace   = "ordersys"
	// monitoringAPI is what the chart checks in .Capabilities.APIVersions before it renders a
	// ServiceMonitor. helm template discovers no APIs, so the scenarios are rendered as for a cluster
	// with the Prometheus Operator's CRDs (as mk/deploy.mk's DEPLOY_API_VERSIONS).
	monitoringAPI = "monitoring.coreos.com/v1/ServiceMonitor"
	fullname      = "ordersys" // release name contains the chart name
)

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

// helmBin is the helm that `make helm-tools` (deploy/helm-tools.sh) builds, or $HELM.
func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), ".state", "tools", "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found at %s: run `make helm-tools` (or deploy/helm-tools.sh), or set HELM", bin)
	}
	return bin
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), "helm", "ordersys") }

// helmTemplate renders the chart (including the test hooks) with the given extra arguments.
func helmTemplate(t *testing.T, extra ...string) ([]byte, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir(t), "--namespace", namespace, "--kube-version", kubeVersion}, extra...)
	cmd := exec.Command(helmBin(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart renders (the
// type is not in k8s.io/api); strict decoding rejects any field not listed here.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered holds every object of one rendering, decoded into its API type.
type rendered struct {
	all             []metav1.Object
	deployments     map[string]*appsv1.Deployment // by component
	services        map[string]*corev1.Service    // by name
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler // by target name
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	jobs            []*batchv1.Job
	pods            []*corev1.Pod
	monitors        []*serviceMonitor
	certificates    []*certificate
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict decodes every document into the Go type of its apiVersion and kind, rejecting
// unknown or duplicate fields (a typo in a template fails here, not at `kubectl apply`).
func decodeStrict(t *testing.T, out []byte) *rendered {
	t.Helper()
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	for _, doc := range docSep.Split(string(out), -1) {
		body := stripComments(doc)
		if body == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(body), &tm); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/Pod":
			obj = &corev1.Pod{}
		case "batch/v1/Job":
			obj = &batchv1.Job{}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "networking.k8s.io/v1/NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "monitoring.coreos.com/v1/ServiceMonitor":
			obj = &serviceMonitor{}
		case "cert-manager.io/v1/Certificate":
			obj = &certificate{}
		default:
			t.Fatalf("unexpected object %s %s:\n%s", tm.APIVersion, tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(body), obj); err != nil {
			t.Fatalf("%s does not decode strictly into its API type: %v\n%s", tm.Kind, err, doc)
		}
		r.all = append(r.all, obj.(metav1.Object))
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments[o.Labels["app.kubernetes.io/component"]] = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *corev1.ConfigMap:
			r.configMaps[o.Name] = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		case *corev1.ServiceAccount:
			r.serviceAccounts[o.Name] = o
		case *corev1.Pod:
			r.pods = append(r.pods, o)
		case *batchv1.Job:
			r.jobs = append(r.jobs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			r.hpas[o.Spec.ScaleTargetRef.Name] = o
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *networkingv1.NetworkPolicy:
			r.netpols = append(r.netpols, o)
		case *serviceMonitor:
			r.monitors = append(r.monitors, o)
		case *certificate:
			r.certificates = append(r.certificates, o)
		}
	}
	return r
}

func stripComments(doc string) string {
	var keep []string
	for _, l := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) == 0 {
		return ""
	}
	return strings.Join(keep, "\n") + "\n"
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

// checkPodSecurity: non-root, read-only root filesystem, no privilege escalation, every capability
// dropped, RuntimeDefault seccomp, no service account token, requests and limits set.
func checkPodSecurity(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and RuntimeDefault seccomp", name, psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", name)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: uses a host namespace", name)
	}
	for _, ctr := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := ctr.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", name, ctr.Name)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: readOnlyRootFilesystem must be true", name, ctr.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", name, ctr.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", name, ctr.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
			t.Errorf("%s/%s: capabilities %+v, want drop [ALL] and no add", name, ctr.Name, sc.Capabilities)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s/%s: runAsNonRoot must be true", name, ctr.Name)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := ctr.Resources.Requests[res]; !ok {
				t.Errorf("%s/%s: no %s request", name, ctr.Name, res)
			}
			if _, ok := ctr.Resources.Limits[res]; !ok {
				t.Errorf("%s/%s: no %s limit", name, ctr.Name, res)
			}
		}
		if ctr.Image == "" {
			t.Errorf("%s/%s: no image", name, ctr.Name)
		}
	}
}

// envSource is where a container's variable comes from.
type envSource struct {
	value  string // literal or ConfigMap value
	secret string // Secret name, when it comes from a Secret
}

// resolveEnv computes a container's environment from env and envFrom, resolving ConfigMaps and
// Secrets against the rendered objects (or the scenario's existing Secret). A reference to an object
// that neither renders nor exists beforehand fails the test.
func resolveEnv(t *testing.T, r *rendered, sc scenario, ctr corev1.Container) map[string]envSource {
	t.Helper()
	env := map[string]envSource{}
	for _, from := range ctr.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := r.configMaps[from.ConfigMapRef.Name]
			if cm == nil {
				t.Errorf("%s: envFrom ConfigMap %s is not rendered", ctr.Name, from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = envSource{value: v}
			}
		default:
			t.Errorf("%s: envFrom %+v: only ConfigMaps are expected", ctr.Name, from)
		}
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envSource{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name == sc.kafkaSASLSecret && ref.Name != "" {
				if e.Name != "ORDERSYS_KAFKA_SASL_PASSWORD" || ref.Key != "password" {
					t.Errorf("%s: %s reads key %q of the Kafka SASL Secret %s", ctr.Name, e.Name, ref.Key, ref.Name)
				}
			} else if ref.Name == sc.existingSecret {
				if want := map[bool]string{true: sc.userKey, false: sc.passKey}[e.Name == "ORDERSYS_CQL_USERNAME"]; ref.Key != want {
					t.Errorf("%s: %s reads key %q of the existing Secret, want %q", ctr.Name, e.Name, ref.Key, want)
				}
			} else if s := r.secrets[ref.Name]; s == nil {
				t.Errorf("%s: %s reads Secret %s, which is neither rendered nor the existing Secret", ctr.Name, e.Name, ref.Name)
			} else if _, ok := s.Data[ref.Key]; !ok {
				t.Errorf("%s: %s reads key %s, absent from Secret %s", ctr.Name, e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = envSource{secret: ref.Name}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := r.configMaps[ref.Name]
			if cm == nil {
				t.Errorf("%s: %s reads ConfigMap %s, which is not rendered", ctr.Name, e.Name, ref.Name)
				continue
			}
			env[e.Name] = envSource{value: cm.Data[ref.Key]}
		default:
			t.Errorf("%s: %s: unexpected valueFrom %+v", ctr.Name, e.Name, e.ValueFrom)
		}
	}
	return env
}

// checkSecretSources: secret variables come from a Secret, never a literal or a ConfigMap.
func checkSecretSources(t *testing.T, c contract, env map[string]envSource) {
	t.Helper()
	for _, v := range c.Secret {
		if e, ok := env[v]; ok && e.secret == "" {
			t.Errorf("%s must come from a Secret (secretKeyRef), not a plain value or ConfigMap", v)
		}
	}
}

func ordersysNames(env map[string]envSource) []string {
	var names []string
	for k := range env {
		if strings.HasPrefix(k, "ORDERSYS_") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func servicePort(s *corev1.Service, name string) int32 {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return p.Port
		}
	}
	return 0
}

func ingressOpens(np *networkingv1.NetworkPolicy, port string) bool {
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.String() == port {
				return true
			}
		}
	}
	return false
}

func hookWeight(a map[string]string) int {
	var w int
	fmt.Sscanf(a["helm.sh/hook-weight"], "%d", &w)
	return w
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

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

// livenessService is grpcx.HealthServiceLiveness (this module imports no service code).
const livenessService = "ordersys.liveness"

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// cqlTLSDir is where the chart mounts the Secret of cql.tls.existingSecret.
const cqlTLSDir = "/etc/ordersys/cql-tls"

// checkCQLTLS checks that a pod reaches the cluster over TLS exactly when the scenario names a
// Secret: the Secret mounted read-only at cqlTLSDir and the TLS variables pointing into it.
func checkCQLTLS(t *testing.T, sc scenario, spec corev1.PodSpec, ctr corev1.Container, env map[string]envSource) {
	t.Helper()
	mounted, fromSecret := mountedSecret(spec, ctr, cqlTLSDir, sc.cqlTLSSecret)
	ca := env["ORDERSYS_CQL_TLS_CA_FILE"].value
	switch {
	case sc.cqlTLSSecret != "" && (!mounted || !fromSecret):
		t.Errorf("Secret %s not mounted read-only at %s", sc.cqlTLSSecret, cqlTLSDir)
	case sc.cqlTLSSecret != "" && !strings.Contains(ca, cqlTLSDir+"/ca.crt"):
		t.Errorf("ORDERSYS_CQL_TLS_CA_FILE = %s, want %s/ca.crt", ca, cqlTLSDir)
	case sc.cqlTLSSecret == "" && mounted:
		t.Errorf("%s mounted without cql.tls.existingSecret", cqlTLSDir)
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
