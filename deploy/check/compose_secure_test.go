package check

import (
	"crypto/x509"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// TestComposeSecure checks deploy/compose.secure.yaml over compose.yaml against secrets that
// devsecrets -compose has just written: TLS and authentication on every hop that can have them.
func TestComposeSecure(t *testing.T) {
	c := loadContract(t)
	secrets, outputs := generateSecrets(t)
	p := loadSecureCompose(t, types.Mapping{"ORDERSYS_SECRETS_DIR": secrets})
	copied, owner := installed(t, p)
	server := readCertificate(t, filepath.Join(secrets, "server.pem"))
	cql := readEnvFile(t, filepath.Join(secrets, "compose-cql.env"))
	kafka := readEnvFile(t, filepath.Join(secrets, "compose-kafka.env"))
	roots := x509.NewCertPool()
	roots.AddCert(readCertificate(t, filepath.Join(secrets, "ca.pem")))
	verifies := func(host string) bool {
		_, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err == nil
	}
	service := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("no service %s", name)
		}
		return s
	}
	scyllaAuth, redpandaUsers := service("scylla-auth"), service("redpanda-users")
	iss, aud := tokenClaims(t, filepath.Join(secrets, "token-reader"))

	// Every file the overlay takes from the host is one the generator writes.
	t.Run("generated-files", func(t *testing.T) {
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind && (s.Name != "certs" || v.Source != secrets || !v.ReadOnly) {
					t.Errorf("%s mounts %s from the host: only the certs job mounts the secrets folder, read-only", s.Name, v.Source)
				}
			}
			for _, f := range s.EnvFiles {
				if filepath.Dir(f.Path) != secrets || !slices.Contains(outputs, filepath.Base(f.Path)) {
					t.Errorf("%s: env_file %s is not a file devsecrets -compose writes (%v)", s.Name, f.Path, outputs)
				}
			}
		}
		for vol, files := range copied {
			for _, f := range files {
				if !slices.Contains(outputs, f) {
					t.Errorf("the certs job copies %s into %s, which devsecrets -compose does not write (%v)", f, vol, outputs)
				}
			}
		}
		if got := owner["ordersys-tls"]; got != service("command").User {
			t.Errorf("ordersys-tls files owned by %q, but the services run as %q", got, service("command").User)
		}
		if owner["scylla-tls"] != "scylla:scylla" || service("certs").Image != service("scylla").Image {
			t.Error("scylla-tls must be owned by the scylla user, resolved in the ScyllaDB image itself")
		}
	})

	t.Run("grpc", func(t *testing.T) {
		for _, name := range c.serviceNames() {
			s, port := service(name), c.Services[name].GRPCPort
			checkOrdersysContainer(t, s, name)
			checkEnvNames(t, ordersysEnvKeys(s.Environment), c.serviceEnv(name), c.optional(name))
			for _, v := range []string{"ORDERSYS_GRPC_TLS_CERT_FILE", "ORDERSYS_GRPC_TLS_KEY_FILE", "ORDERSYS_GRPC_TLS_CLIENT_CA_FILE", "ORDERSYS_AUTH_JWKS_FILE"} {
				checkMounted(t, s, v, envValue(s, v), copied)
			}
			if envValue(s, "ORDERSYS_AUTH_ISSUER") != iss || !slices.Contains(aud, envValue(s, "ORDERSYS_AUTH_AUDIENCE")) {
				t.Errorf("%s: issuer %q audience %q, but the generated tokens have iss %q aud %v", name,
					envValue(s, "ORDERSYS_AUTH_ISSUER"), envValue(s, "ORDERSYS_AUTH_AUDIENCE"), iss, aud)
			}
			test := s.HealthCheck.Test
			if len(test) < 3 || test[2] != "-addr=127.0.0.1:"+strconv.Itoa(int(port)) || !slices.Contains(test, "-tls") {
				t.Errorf("%s: healthcheck %v: want grpc_health_probe -addr=127.0.0.1:%d -tls", name, test, port)
			}
			for _, f := range []string{"tls-ca-cert", "tls-client-cert", "tls-client-key"} {
				checkMounted(t, s, "healthcheck -"+f, flagValue(test, f), copied)
			}
			for _, host := range []string{name, "localhost", "127.0.0.1"} {
				if !verifies(host) {
					t.Errorf("the server certificate does not verify for %s", host)
				}
			}
		}
	})

	t.Run("cql", func(t *testing.T) {
		scylla := service("scylla")
		ip := scylla.Networks["default"].Ipv4Address
		for _, name := range append(c.serviceNames(), "migrate") {
			s := service(name)
			if name == "migrate" {
				checkOrdersysContainer(t, s, name)
				checkEnvNames(t, ordersysEnvKeys(s.Environment), c.jobEnv(name), c.optional(name))
			}
			checkMounted(t, s, "ORDERSYS_CQL_TLS_CA_FILE", envValue(s, "ORDERSYS_CQL_TLS_CA_FILE"), copied)
			if envValue(s, "ORDERSYS_CQL_TLS_ENABLED") != "true" || envValue(s, "ORDERSYS_CQL_TLS_SKIP_HOST_VERIFICATION") == "true" {
				t.Errorf("%s: CQL TLS must be on with host verification", name)
			}
			if u := envValue(s, "ORDERSYS_CQL_USERNAME"); u == "" || u != envValue(scyllaAuth, "ORDERSYS_CQL_USERNAME") {
				t.Errorf("%s: ORDERSYS_CQL_USERNAME %q, but scylla-auth creates %q", name, u, envValue(scyllaAuth, "ORDERSYS_CQL_USERNAME"))
			}
			if pw := envValue(s, "ORDERSYS_CQL_PASSWORD"); pw == "" || pw != cql["ORDERSYS_CQL_PASSWORD"] || pw != envValue(scyllaAuth, "ORDERSYS_CQL_PASSWORD") {
				t.Errorf("%s: ORDERSYS_CQL_PASSWORD is not the password of compose-cql.env that scylla-auth sets", name)
			}
			for _, h := range strings.Split(envValue(s, "ORDERSYS_CQL_HOSTS"), ",") {
				host, _, _ := net.SplitHostPort(h)
				// gocql dials the node's address and verifies the certificate for it.
				if host != "scylla" || ip == "" || !verifies(host) || !verifies(ip) {
					t.Errorf("%s: CQL host %s (ScyllaDB at %q): want scylla at a fixed address, both in the server certificate", name, h, ip)
				}
			}
		}
		for _, n := range p.Networks["default"].Ipam.Config {
			if _, subnet, err := net.ParseCIDR(n.Subnet); err != nil || !subnet.Contains(net.ParseIP(ip)) {
				t.Errorf("ScyllaDB's address %s is outside the network's subnet %s", ip, n.Subnet)
			} else if _, dyn, err := net.ParseCIDR(n.IPRange); err != nil || dyn.Contains(net.ParseIP(ip)) {
				t.Errorf("ScyllaDB's address %s is inside the dynamic range %s", ip, n.IPRange)
			}
		}
		args := scylla.Command
		for _, want := range []string{"--authenticator=PasswordAuthenticator", "--client-encryption-options=enabled=true", "--api-address=127.0.0.1"} {
			if !slices.Contains(args, want) {
				t.Errorf("scylla command %v lacks %s", args, want)
			}
		}
		var keys []string
		for _, a := range args {
			if strings.Contains(a, "native-transport-port") {
				t.Errorf("scylla: %s: a second CQL port would leave one of them in plaintext", a)
			}
			if kv, ok := strings.CutPrefix(a, "--client-encryption-options="); ok && kv != "enabled=true" {
				k, file, _ := strings.Cut(kv, "=")
				checkMounted(t, scylla, "client_encryption_options "+k, file, copied)
				keys = append(keys, k)
			}
		}
		if slices.Sort(keys); !slices.Equal(keys, []string{"certificate", "keyfile"}) {
			t.Errorf("scylla: client_encryption_options files %v, want certificate and keyfile", keys)
		}
		checkMounted(t, scyllaAuth, "SSL_CERTFILE", envValue(scyllaAuth, "SSL_CERTFILE"), copied)
		if envValue(scyllaAuth, "SSL_VALIDATE") != "true" || envValue(scyllaAuth, "SSL_CHECK_HOSTNAME") != "true" {
			t.Error("scylla-auth: cqlsh must validate the node's certificate and host name")
		}
	})

	t.Run("kafka", func(t *testing.T) {
		for _, name := range c.serviceNames() {
			s := service(name)
			_, uses := s.Environment["ORDERSYS_KAFKA_BROKERS"]
			if uses != (name == "cdc-relay" || name == "projector") {
				t.Errorf("%s: ORDERSYS_KAFKA_BROKERS set = %v", name, uses)
			}
			if !uses {
				continue
			}
			checkMounted(t, s, "ORDERSYS_KAFKA_TLS_CA_FILE", envValue(s, "ORDERSYS_KAFKA_TLS_CA_FILE"), copied)
			if envValue(s, "ORDERSYS_KAFKA_TLS_ENABLED") != "true" || envValue(s, "ORDERSYS_KAFKA_TLS_SKIP_HOST_VERIFICATION") == "true" {
				t.Errorf("%s: Kafka TLS must be on with host verification", name)
			}
			if m := envValue(s, "ORDERSYS_KAFKA_SASL_MECHANISM"); m != "SCRAM-SHA-512" || !strings.Contains(strings.Join(redpandaUsers.Entrypoint, " "), "--mechanism "+m) {
				t.Errorf("%s: SASL mechanism %q: want SCRAM-SHA-512, the one redpanda-users gives the user", name, m)
			}
			if u := envValue(s, "ORDERSYS_KAFKA_SASL_USERNAME"); u == "" || u != envValue(redpandaUsers, "ORDERSYS_KAFKA_SASL_USERNAME") {
				t.Errorf("%s: SASL user %q, but redpanda-users creates %q", name, u, envValue(redpandaUsers, "ORDERSYS_KAFKA_SASL_USERNAME"))
			}
			if pw := envValue(s, "ORDERSYS_KAFKA_SASL_PASSWORD"); pw == "" || pw != kafka["ORDERSYS_KAFKA_SASL_PASSWORD"] || pw != envValue(redpandaUsers, "ORDERSYS_KAFKA_SASL_PASSWORD") {
				t.Errorf("%s: ORDERSYS_KAFKA_SASL_PASSWORD is not the password of compose-kafka.env that redpanda-users sets", name)
			}
			for _, b := range strings.Split(envValue(s, "ORDERSYS_KAFKA_BROKERS"), ",") {
				if host, _, _ := net.SplitHostPort(b); !verifies(host) {
					t.Errorf("%s: broker %s is not in the server certificate", name, b)
				}
			}
		}
	})

	t.Run("redpanda", func(t *testing.T) {
		rp := service("redpanda")
		var node struct {
			Redpanda struct {
				KafkaAPITLS []tlsEntry `json:"kafka_api_tls"`
				AdminAPITLS []tlsEntry `json:"admin_api_tls"`
			} `json:"redpanda"`
			Pandaproxy     any `json:"pandaproxy"`
			SchemaRegistry any `json:"schema_registry"`
		}
		var boot struct {
			EnableSASL          bool     `json:"enable_sasl"`
			AdminAPIRequireAuth bool     `json:"admin_api_require_auth"`
			Superusers          []string `json:"superusers"`
		}
		for name, dst := range map[string]any{"redpanda-node": &node, "redpanda-bootstrap": &boot} {
			if err := yaml.Unmarshal([]byte(p.Configs[name].Content), dst); err != nil || p.Configs[name].Content == "" {
				t.Fatalf("config %s: %v", name, err)
			}
		}
		script := strings.Join(rp.Entrypoint, "\n")
		for _, cfg := range rp.Configs {
			if !strings.Contains(script, "cp "+cfg.Target+" /etc/redpanda/") {
				t.Errorf("redpanda: config %s (%s) is not copied into /etc/redpanda by the entrypoint", cfg.Source, cfg.Target)
			}
		}
		check := func(what string, e tlsEntry) {
			if !e.Enabled {
				t.Errorf("redpanda: %s: TLS not enabled", what)
			}
			for k, f := range map[string]string{"cert_file": e.CertFile, "key_file": e.KeyFile, "truststore_file": e.TruststoreFile} {
				checkMounted(t, rp, what+" "+k, f, copied)
			}
		}
		for _, l := range strings.Split(flagValue(rp.Command, "kafka-addr"), ",") {
			name, _, _ := strings.Cut(l, "://")
			i := slices.IndexFunc(node.Redpanda.KafkaAPITLS, func(e tlsEntry) bool { return e.Name == name })
			if i < 0 {
				t.Errorf("redpanda: Kafka listener %s has no kafka_api_tls entry", name)
				continue
			}
			check("kafka_api_tls "+name, node.Redpanda.KafkaAPITLS[i])
		}
		for _, a := range strings.Split(flagValue(rp.Command, "advertise-kafka-addr"), ",") {
			_, hostport, _ := strings.Cut(a, "://")
			if host, _, _ := net.SplitHostPort(hostport); !verifies(host) {
				t.Errorf("redpanda: advertised %s is not in the server certificate", a)
			}
		}
		if len(node.Redpanda.AdminAPITLS) != 1 {
			t.Errorf("redpanda: admin_api_tls %v: want one entry", node.Redpanda.AdminAPITLS)
		} else {
			check("admin_api_tls", node.Redpanda.AdminAPITLS[0])
		}
		if node.Pandaproxy != nil || node.SchemaRegistry != nil {
			t.Error("redpanda: the HTTP Proxy and Schema Registry sections would start unauthenticated listeners")
		}
		admin := envValue(rp, "DEV_REDPANDA_ADMIN_USER")
		if !boot.EnableSASL || !boot.AdminAPIRequireAuth || !slices.Equal(boot.Superusers, []string{admin}) || envValue(redpandaUsers, "RPK_USER") != admin {
			t.Errorf("redpanda bootstrap %+v: want enable_sasl, admin_api_require_auth and superusers [%s], the user of RP_BOOTSTRAP_USER and redpanda-users", boot, admin)
		}
		if !strings.Contains(script, `RP_BOOTSTRAP_USER="$DEV_REDPANDA_ADMIN_USER:$DEV_REDPANDA_ADMIN_PASSWORD:`) || envValue(rp, "DEV_REDPANDA_ADMIN_PASSWORD") == "" {
			t.Error("redpanda: RP_BOOTSTRAP_USER must create the superuser with the password of compose-redpanda.env")
		}
		for _, v := range []string{"RPK_TLS_CA", "RPK_ADMIN_TLS_CA"} {
			checkMounted(t, redpandaUsers, v, envValue(redpandaUsers, v), copied)
		}
		if envValue(redpandaUsers, "RPK_TLS_ENABLED") != "true" || envValue(redpandaUsers, "RPK_ADMIN_TLS_ENABLED") != "true" {
			t.Error("redpanda-users: rpk must use TLS to the Kafka and Admin APIs")
		}
	})

	// Published host ports: each one speaks TLS, or is one of the documented plaintext HTTP ports.
	t.Run("ports", func(t *testing.T) {
		for _, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q, want 127.0.0.1", s.Name, port.Published, port.HostIP)
				}
				entry, ordersys := c.Services[s.Name]
				switch {
				case ordersys && port.Target == uint32(entry.GRPCPort):
					checkMounted(t, s, "ORDERSYS_GRPC_TLS_CERT_FILE", envValue(s, "ORDERSYS_GRPC_TLS_CERT_FILE"), copied)
				case ordersys && port.Target == uint32(entry.MetricsPort): // HTTP /metrics, documented
				case s.Name == "scylla" && port.Target == 9042: // TLS only (cql subtest)
				case s.Name == "redpanda" && port.Target == 19092: // external listener, TLS (redpanda subtest)
				case s.Name == "jaeger" && port.Target == 16686: // the UI, documented
				default:
					t.Errorf("%s publishes port %d, which is neither TLS nor a documented plaintext HTTP port", s.Name, port.Target)
				}
			}
		}
	})

	t.Run("jobs-and-dependencies", func(t *testing.T) {
		certs := service("certs")
		if !certs.ReadOnly || certs.NetworkMode != "none" || !slices.Equal(certs.CapDrop, []string{"ALL"}) ||
			!slices.Equal(certs.CapAdd, []string{"CHOWN", "DAC_OVERRIDE", "FOWNER"}) {
			t.Errorf("certs: read-only %v, network %q, cap_drop %v, cap_add %v: want read-only, none, ALL, CHOWN DAC_OVERRIDE FOWNER",
				certs.ReadOnly, certs.NetworkMode, certs.CapDrop, certs.CapAdd)
		}
		for _, name := range []string{"certs", "scylla-auth", "redpanda-users"} {
			s := service(name)
			if s.Restart != "no" || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: one-shot job with every capability dropped and no new privileges", name)
			}
		}
		done, healthy := types.ServiceConditionCompletedSuccessfully, types.ServiceConditionHealthy
		for _, name := range append(c.serviceNames(), "migrate") {
			wantDep(t, service(name), "certs", done)
			wantDep(t, service(name), "scylla-auth", done)
		}
		for _, pair := range [][2]string{{"cdc-relay", "redpanda-users"}, {"projector", "redpanda-users"}, {"scylla", "certs"}, {"redpanda", "certs"}} {
			wantDep(t, service(pair[0]), pair[1], done)
		}
		wantDep(t, scyllaAuth, "scylla", healthy)
		wantDep(t, redpandaUsers, "redpanda", healthy)
		for _, s := range p.Services {
			for dep, d := range s.DependsOn {
				if target, err := p.GetService(dep); err != nil || (d.Condition == healthy && target.HealthCheck == nil) {
					t.Errorf("%s waits for %s (%s), which does not exist or has no healthcheck", s.Name, dep, d.Condition)
				}
			}
		}
	})

	// Without ORDERSYS_SECRETS_DIR the overlay reads .state/secure, where devsecrets writes by
	// default, and no secret variable has a value in the compose files themselves.
	t.Run("defaults-and-no-secret-in-the-files", func(t *testing.T) {
		raw := loadSecureCompose(t, types.Mapping{}, func(o *loader.Options) { o.SkipResolveEnvironment = true })
		want := filepath.Join(repoRoot(t), ".state", "secure")
		for _, s := range raw.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind && v.Source != want {
					t.Errorf("%s: bind mount %s, want %s", s.Name, v.Source, want)
				}
			}
			for _, f := range s.EnvFiles {
				if filepath.Dir(f.Path) != want {
					t.Errorf("%s: env_file %s, want one in %s", s.Name, f.Path, want)
				}
			}
			for _, secret := range append(slices.Clone(c.Secret), "DEV_REDPANDA_ADMIN_PASSWORD", "RPK_PASS") {
				if _, set := s.Environment[secret]; set {
					t.Errorf("%s: %s is set in the compose files; it must come from an env file", s.Name, secret)
				}
			}
		}
	})
}
