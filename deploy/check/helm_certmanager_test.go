package check

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// certificate is the part of cert-manager.io/v1 Certificate the chart renders (the type is not in
// k8s.io/api); strict decoding rejects any field not listed here. Field names as in the
// cert-manager CRD pinned in deploy/k8s/crds.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName     string `json:"secretName"`
		SecretTemplate struct {
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"secretTemplate"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
		Duration             string `json:"duration"`
		RenewBefore          string `json:"renewBefore"`
		RevisionHistoryLimit int    `json:"revisionHistoryLimit"`
		PrivateKey           struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		Usages   []string `json:"usages"`
		DNSNames []string `json:"dnsNames"`
	} `json:"spec"`
}

// mustRender renders the chart with args and decodes it strictly; a rendering error fails t.
func mustRender(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeStrict(t, out)
}

// serviceDNSNames are the names a client in the cluster may dial a Service by.
func serviceDNSNames(svc, ns, clusterDomain string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + clusterDomain}
}

// checkCertificate: a cert-manager Certificate is rendered exactly when the scenario asks for
// one; its Secret is the one the pods mount, it names every Service of the release as the clients
// dial it (and the name `helm test` checks), serves both ends of mutual TLS and is renewed before
// it expires.
func checkCertificate(t *testing.T, sc scenario, r *rendered) {
	t.Helper()
	if !sc.grpcCertManager {
		if len(r.certificates) != 0 {
			t.Errorf("%d Certificates rendered, want none without grpc.tls.certManager.enabled", len(r.certificates))
		}
		return
	}
	if len(r.certificates) != 1 {
		t.Fatalf("%d Certificates rendered, want 1 (grpc.tls.certManager.enabled)", len(r.certificates))
	}
	c := r.certificates[0]
	if c.Spec.SecretName != sc.grpcTLSSecret {
		t.Errorf("Certificate %s writes Secret %q, the pods mount %q", c.Name, c.Spec.SecretName, sc.grpcTLSSecret)
	}
	if _, ok := r.secrets[c.Spec.SecretName]; ok {
		t.Errorf("the chart renders Secret %s itself; cert-manager owns it", c.Spec.SecretName)
	}
	if c.Spec.IssuerRef.Name == "" || c.Spec.IssuerRef.Kind == "" || c.Spec.IssuerRef.Group == "" {
		t.Errorf("issuerRef %+v: name, kind and group must be set", c.Spec.IssuerRef)
	}
	for _, svc := range r.services {
		for _, n := range serviceDNSNames(svc.Name, namespace, "cluster.local") {
			if !slices.Contains(c.Spec.DNSNames, n) {
				t.Errorf("Certificate %s does not name %s (Service %s); dnsNames %v", c.Name, n, svc.Name, c.Spec.DNSNames)
			}
		}
	}
	for _, p := range r.pods {
		for _, arg := range p.Spec.Containers[0].Command {
			if name, ok := strings.CutPrefix(arg, "-tls-server-name="); ok && !slices.Contains(c.Spec.DNSNames, name) {
				t.Errorf("helm test pod %s checks server name %s, which the Certificate does not name", p.Name, name)
			}
		}
	}
	for _, u := range []string{"server auth", "client auth", "digital signature"} {
		if !slices.Contains(c.Spec.Usages, u) {
			t.Errorf("Certificate usages %v lack %q", c.Spec.Usages, u)
		}
	}
	d, err1 := time.ParseDuration(c.Spec.Duration)
	rb, err2 := time.ParseDuration(c.Spec.RenewBefore)
	if err1 != nil || err2 != nil || d < time.Hour || rb <= 0 || rb >= d {
		t.Errorf("duration %q, renewBefore %q: want Go durations, duration >= 1h (cert-manager's minimum), 0 < renewBefore < duration",
			c.Spec.Duration, c.Spec.RenewBefore)
	}
	if c.Spec.PrivateKey.RotationPolicy != "Always" || c.Spec.PrivateKey.Encoding != "PKCS8" {
		t.Errorf("privateKey %+v: want rotationPolicy Always and PKCS8 (Go reads every algorithm in it)", c.Spec.PrivateKey)
	}
}

// TestGRPCCertManager renders the Certificate for values beyond the ci example: the Secret name,
// another release name and namespace, the cluster domain, an issuer of an external group, the key.
// The chart before cert-manager support refused these values (no such keys in its schema) and
// rendered no Certificate.
func TestGRPCCertManager(t *testing.T) {
	on := []string{"--set", "grpc.tls.certManager.enabled=true", "--set", "grpc.tls.certManager.issuerRef.name=ca"}
	cases := map[string]struct {
		args          []string
		fullname, ns  string
		clusterDomain string
		secret        string
		check         func(t *testing.T, c *certificate)
	}{
		"defaults": {args: on, fullname: fullname, ns: namespace, clusterDomain: "cluster.local", secret: fullname + "-grpc-tls",
			check: func(t *testing.T, c *certificate) {
				i, k := c.Spec.IssuerRef, c.Spec.PrivateKey
				if i.Kind != "Issuer" || i.Group != "cert-manager.io" || c.Spec.Duration != "2160h" || c.Spec.RenewBefore != "720h" ||
					k.Algorithm != "ECDSA" || k.Size != 256 {
					t.Errorf("issuerRef %+v, duration %s, renewBefore %s, key %+v: want an Issuer of cert-manager.io, 2160h, 720h, ECDSA 256",
						i, c.Spec.Duration, c.Spec.RenewBefore, k)
				}
				if len(c.Spec.DNSNames) != 16 {
					t.Errorf("%d dnsNames, want 16 (4 Services x 4 forms): %v", len(c.Spec.DNSNames), c.Spec.DNSNames)
				}
			}},
		"other release, namespace, domain, secret, issuer": {
			args: append(slices.Clone(on), "--namespace", "shop", "--set", "fullnameOverride=orders",
				"--set", "grpc.tls.certManager.clusterDomain=corp.internal", "--set", "grpc.tls.certManager.secretName=orders-api-tls",
				"--set", "grpc.tls.certManager.issuerRef.kind=AWSPCAClusterIssuer", "--set", "grpc.tls.certManager.issuerRef.group=awspca.cert-manager.io",
				"--set", "grpc.tls.certManager.duration=720h", "--set", "grpc.tls.certManager.renewBefore=240h",
				"--set", "grpc.tls.certManager.extraDnsNames[0]=orders.example.com", "--set", "grpc.tls.clientAuth=true"),
			fullname: "orders", ns: "shop", clusterDomain: "corp.internal", secret: "orders-api-tls",
			check: func(t *testing.T, c *certificate) {
				if i := c.Spec.IssuerRef; i.Name != "ca" || i.Kind != "AWSPCAClusterIssuer" || i.Group != "awspca.cert-manager.io" {
					t.Errorf("issuerRef %+v", i)
				}
				if c.Spec.Duration != "720h" || c.Spec.RenewBefore != "240h" {
					t.Errorf("duration %s, renewBefore %s, want 720h, 240h", c.Spec.Duration, c.Spec.RenewBefore)
				}
				if !slices.Contains(c.Spec.DNSNames, "orders.example.com") {
					t.Errorf("extraDnsNames missing from %v", c.Spec.DNSNames)
				}
			}},
		"Ed25519 has no size": {
			args:     append(slices.Clone(on), "--set", "grpc.tls.certManager.privateKey.algorithm=Ed25519"),
			fullname: fullname, ns: namespace, clusterDomain: "cluster.local", secret: fullname + "-grpc-tls",
			check: func(t *testing.T, c *certificate) {
				if k := c.Spec.PrivateKey; k.Algorithm != "Ed25519" || k.Size != 0 {
					t.Errorf("privateKey %+v, want Ed25519 without a size", k)
				}
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, tc.args...)
			if len(r.certificates) != 1 {
				t.Fatalf("%d Certificates rendered, want 1", len(r.certificates))
			}
			c := r.certificates[0]
			if c.Spec.SecretName != tc.secret {
				t.Errorf("secretName %q, want %q", c.Spec.SecretName, tc.secret)
			}
			for _, comp := range []string{"command", "query", "cdc-relay", "projector"} {
				svc := tc.fullname + "-" + comp
				if r.services[svc] == nil {
					t.Errorf("no Service %s", svc)
				}
				for _, n := range serviceDNSNames(svc, tc.ns, tc.clusterDomain) {
					if !slices.Contains(c.Spec.DNSNames, n) {
						t.Errorf("dnsNames %v lack %s", c.Spec.DNSNames, n)
					}
				}
				// Every pod of the component mounts cert-manager's Secret, not an existing one.
				d := r.deployments[comp]
				if d == nil {
					t.Fatalf("no Deployment %s", comp)
				}
				spec := d.Spec.Template.Spec
				if mounted, fromSecret := mountedSecret(spec, spec.Containers[0], grpcTLSDir, tc.secret); !mounted || !fromSecret {
					t.Errorf("%s: Secret %s not mounted read-only at %s", comp, tc.secret, grpcTLSDir)
				}
				if p := spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
					t.Errorf("%s: readiness probe %+v, want HTTP /readyz (gRPC TLS is on)", comp, p)
				}
			}
			for _, p := range r.pods {
				if mounted, fromSecret := mountedSecret(p.Spec, p.Spec.Containers[0], grpcTLSDir, tc.secret); !mounted || !fromSecret {
					t.Errorf("helm test pod %s does not mount Secret %s", p.Name, tc.secret)
				}
			}
			tc.check(t, c)
		})
	}
}

// TestGRPCCertificateSourceValidation: the chart refuses ambiguous or incomplete certificate
// settings with a message that says what to set.
func TestGRPCCertificateSourceValidation(t *testing.T) {
	cm := func(extra ...string) []string {
		return append([]string{"--set", "grpc.tls.certManager.enabled=true"}, extra...)
	}
	cases := map[string]struct {
		args []string
		want string
	}{
		"existing Secret and cert-manager": {cm("--set", "grpc.tls.certManager.issuerRef.name=ca", "--set", "grpc.tls.existingSecret=grpc-tls"),
			"set either grpc.tls.existingSecret (a Secret you provide) or grpc.tls.certManager.enabled (a Certificate cert-manager issues), not both"},
		"cert-manager without an issuer": {cm(),
			"grpc.tls.certManager.enabled needs grpc.tls.certManager.issuerRef.name"},
		"cert-manager.io issuer of an unknown kind": {cm("--set", "grpc.tls.certManager.issuerRef.name=ca", "--set", "grpc.tls.certManager.issuerRef.kind=CAIssuer"),
			"cert-manager.io issuers are Issuer or ClusterIssuer"},
		"client auth without a certificate": {[]string{"--set", "grpc.tls.clientAuth=true"},
			"grpc.tls.clientAuth needs grpc.tls.existingSecret or grpc.tls.certManager.enabled"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t, tc.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want it refused", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template %v: error does not say %q:\n%v", tc.args, tc.want, err)
			}
		})
	}
	// Neither source: plaintext, no Certificate (the chart defaults).
	if n := len(mustRender(t).certificates); n != 0 {
		t.Errorf("%d Certificates in the chart defaults, want 0", n)
	}
}
