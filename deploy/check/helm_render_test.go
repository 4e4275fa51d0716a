package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Rendering the chart: the helm binary, `helm template` with the test defaults, and strict
// decoding of every rendered object into its Kubernetes API type.

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

// helmBin is the helm that `make helm-tools` links (the helm of tools/go.mod), or $HELM.
func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), ".state", "tools", "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found at %s: run `make helm-tools`, or set HELM", bin)
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
