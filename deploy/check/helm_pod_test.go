package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// What the scenarios check in a rendered pod: its security settings, its environment (resolved
// through ConfigMaps and Secrets), its CQL TLS files, and small lookups in rendered objects.

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
