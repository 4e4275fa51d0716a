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
		CommonName string   `json:"commonName,omitempty"`
		Usages     []string `json:"usages"`
		DNSNames   []string `json:"dnsNames,omitempty"`
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

// certificate returns the rendered Certificate called name, or nil.
func (r *rendered) certificate(name string) *certificate {
	for _, c := range r.certificates {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// serviceDNSNames are the names a client in the cluster may dial a Service by.
func serviceDNSNames(svc, ns, clusterDomain string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc." + clusterDomain}
}

// checkCertificate: cert-manager Certificates are rendered exactly when the scenario asks for
// them. The gRPC one writes the Secret the pods mount, names every Service of the release as the
// clients dial it (and the name `helm test` checks), serves both ends of mutual TLS and is renewed
// before it expires; each client certificate (checkClientCertificate) writes the Secret mounted
// for its store.
func checkCertificate(t *testing.T, sc scenario, r *rendered) {
	t.Helper()
	want := len(sc.clientCertManager)
	if sc.grpcCertManager {
		want++
	}
	if len(r.certificates) != want {
		t.Fatalf("%d Certificates rendered, want %d (gRPC: %v, client certificates for %v)", len(r.certificates), want, sc.grpcCertManager, sc.clientCertManager)
	}
	for _, store := range sc.clientCertManager {
		secret := map[string]string{"cql": sc.cqlTLSSecret, "kafka": sc.kafkaTLSSecret}[store]
		checkClientCertificate(t, r, fullname+"-"+store+"-client", secret)
	}
	if !sc.grpcCertManager {
		return
	}
	c := r.certificate(fullname + "-grpc")
	if c == nil {
		t.Fatalf("no Certificate %s-grpc", fullname)
	}
	checkCertificateSpec(t, r, c, sc.grpcTLSSecret)
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
}

// checkClientCertificate: the client certificate name writes secret (the one mounted for its
// store), names an identity, may only authenticate a client, and is renewed before it expires.
func checkClientCertificate(t *testing.T, r *rendered, name, secret string) {
	t.Helper()
	c := r.certificate(name)
	if c == nil {
		t.Fatalf("no Certificate %s", name)
	}
	checkCertificateSpec(t, r, c, secret)
	if c.Spec.CommonName == "" || len(c.Spec.DNSNames) != 0 {
		t.Errorf("Certificate %s: commonName %q, dnsNames %v; want an identity and no host names", name, c.Spec.CommonName, c.Spec.DNSNames)
	}
	if !slices.Contains(c.Spec.Usages, "client auth") || slices.Contains(c.Spec.Usages, "server auth") {
		t.Errorf("Certificate %s usages %v: want client auth only", name, c.Spec.Usages)
	}
}

// checkCertificateSpec: what every Certificate of the chart has: it writes secret (which the
// chart does not render itself), names its issuer, is renewed before it expires and gets a new
// key in PKCS#8 each time.
func checkCertificateSpec(t *testing.T, r *rendered, c *certificate, secret string) {
	t.Helper()
	if c.Spec.SecretName != secret {
		t.Errorf("Certificate %s writes Secret %q, the pods mount %q", c.Name, c.Spec.SecretName, secret)
	}
	if _, ok := r.secrets[c.Spec.SecretName]; ok {
		t.Errorf("the chart renders Secret %s itself; cert-manager owns it", c.Spec.SecretName)
	}
	if c.Spec.IssuerRef.Name == "" || c.Spec.IssuerRef.Kind == "" || c.Spec.IssuerRef.Group == "" {
		t.Errorf("issuerRef %+v: name, kind and group must be set", c.Spec.IssuerRef)
	}
	d, err1 := time.ParseDuration(c.Spec.Duration)
	rb, err2 := time.ParseDuration(c.Spec.RenewBefore)
	if err1 != nil || err2 != nil || d < time.Hour || rb <= 0 || rb >= d {
		t.Errorf("%s: duration %q, renewBefore %q: want Go durations, duration >= 1h (cert-manager's minimum), 0 < renewBefore < duration",
			c.Name, c.Spec.Duration, c.Spec.RenewBefore)
	}
	if c.Spec.PrivateKey.RotationPolicy != "Always" || c.Spec.PrivateKey.Encoding != "PKCS8" {
		t.Errorf("%s: privateKey %+v: want rotationPolicy Always and PKCS8 (Go reads every algorithm in it)", c.Name, c.Spec.PrivateKey)
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
		"CQL client certificate from a Secret and cert-manager": {[]string{"--set", "cql.tls.certManager.enabled=true",
			"--set", "cql.tls.certManager.issuerRef.name=ca", "--set", "cql.tls.existingSecret=cql-tls"},
			"set either cql.tls.existingSecret (a Secret you provide) or cql.tls.certManager.enabled (a client certificate cert-manager issues), not both"},
		"Kafka client certificate from cert-manager without an issuer": {[]string{"--set", "kafka.tls.certManager.enabled=true"},
			"kafka.tls.certManager.enabled needs kafka.tls.certManager.issuerRef.name"},
		"client certificate without a name": {[]string{"--set", "cql.tls.certManager.enabled=true",
			"--set", "cql.tls.certManager.issuerRef.name=ca", "--set", "cql.tls.certManager.commonName="}, "commonName"},
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

// TestClientCertManager: a client certificate from cert-manager for one store is mounted, with
// its certificate and key named in the environment, in exactly the pods that talk to that store
// (CQL: every service and the migration job; Kafka: the relay and the projector), under the
// Secret name asked for. The chart before it refused the values (no such keys in its schema).
func TestClientCertManager(t *testing.T) {
	for _, tc := range []struct {
		store, dir, prefix, secret string
		users                      []string
	}{
		{"cql", cqlTLSDir, "ORDERSYS_CQL_TLS_", "cassandra-client", []string{"command", "query", "cdc-relay", "projector"}},
		{"kafka", kafkaTLSDir, "ORDERSYS_KAFKA_TLS_", fullname + "-kafka-client-tls", []string{"cdc-relay", "projector"}},
	} {
		t.Run(tc.store, func(t *testing.T) {
			t.Parallel()
			args := []string{"--set", tc.store + ".tls.certManager.enabled=true", "--set", tc.store + ".tls.certManager.issuerRef.name=ca",
				"--set", tc.store + ".tls.certManager.commonName=orders-app"}
			if tc.store == "cql" {
				args = append(args, "--set", "cql.tls.certManager.secretName="+tc.secret)
			}
			r := mustRender(t, args...)
			if len(r.certificates) != 1 {
				t.Fatalf("%d Certificates rendered, want 1", len(r.certificates))
			}
			checkClientCertificate(t, r, fullname+"-"+tc.store+"-client", tc.secret)
			if c := r.certificates[0]; c.Spec.CommonName != "orders-app" {
				t.Errorf("commonName %q, want orders-app", c.Spec.CommonName)
			}
			for _, comp := range []string{"command", "query", "cdc-relay", "projector"} {
				d := r.deployments[comp]
				if d == nil {
					t.Fatalf("no Deployment %s", comp)
				}
				spec := d.Spec.Template.Spec
				mounted, fromSecret := mountedSecret(spec, spec.Containers[0], tc.dir, tc.secret)
				uses := slices.Contains(tc.users, comp)
				if uses != (mounted && fromSecret) {
					t.Errorf("%s: Secret %s mounted read-only at %s: %v, want %v", comp, tc.secret, tc.dir, mounted && fromSecret, uses)
				}
				env := resolveEnv(t, r, base, spec.Containers[0])
				for name, file := range map[string]string{"CA_FILE": "ca.crt", "CERT_FILE": "tls.crt", "KEY_FILE": "tls.key"} {
					want := ""
					if uses {
						want = tc.dir + "/" + file
					}
					if got := env[tc.prefix+name].value; got != want {
						t.Errorf("%s: %s%s = %q, want %q", comp, tc.prefix, name, got, want)
					}
				}
			}
			if tc.store == "cql" { // the migration job reaches the cluster with the same certificate
				if len(r.jobs) != 1 {
					t.Fatalf("%d Jobs rendered, want 1 (migrate)", len(r.jobs))
				}
				spec := r.jobs[0].Spec.Template.Spec
				if mounted, fromSecret := mountedSecret(spec, spec.Containers[0], tc.dir, tc.secret); !mounted || !fromSecret {
					t.Errorf("migrate: Secret %s not mounted read-only at %s", tc.secret, tc.dir)
				}
			}
		})
	}
}
