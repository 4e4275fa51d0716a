// Package config reads typed service configuration from ORDERSYS_* environment variables.
//
// A configuration is a plain struct whose fields carry tags:
//
//	type Config struct {
//		config.Common
//		SnapshotEvery int `env:"ORDERSYS_SNAPSHOT_EVERY" default:"100"`
//	}
//
// Load fills such a struct from the environment. Supported field types are string, []string
// (comma separated), int, int64, float64, bool, time.Duration and nested (or embedded) structs,
// which are walked recursively. Fields tagged secret:"true" are masked by String and LogValue.
// InfoRequested answers --help, --help=json (from which docs/configuration.md is generated) and
// --version. The package uses the standard library and pkg/buildinfo only.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Default addresses of each service (docs/DESIGN.md, shared API.md). Pass them to Defaults.
const (
	// CommandGRPCAddr is the command service's default gRPC address.
	CommandGRPCAddr = "127.0.0.1:50051"
	// CommandMetricsAddr is the command service's default metrics address.
	CommandMetricsAddr = ":9101"
	// QueryGRPCAddr is the query service's default gRPC address.
	QueryGRPCAddr = "127.0.0.1:50052"
	// QueryMetricsAddr is the query service's default metrics address.
	QueryMetricsAddr = ":9102"
	// RelayGRPCAddr is the CDC relay's default gRPC (health, admin) address.
	RelayGRPCAddr = "127.0.0.1:50053"
	// RelayMetricsAddr is the CDC relay's default metrics address.
	RelayMetricsAddr = ":9103"
	// ProjectorGRPCAddr is the projector's default gRPC (health, admin) address.
	ProjectorGRPCAddr = "127.0.0.1:50054"
	// ProjectorMetricsAddr is the projector's default metrics address.
	ProjectorMetricsAddr = ":9104"
)

// CQL holds the Cassandra/ScyllaDB connection settings.
type CQL struct {
	// Hosts are the contact points, host:port.
	Hosts []string `env:"ORDERSYS_CQL_HOSTS" default:"127.0.0.1:9042"`
	// Keyspace is the keyspace holding the ordersys tables.
	Keyspace string `env:"ORDERSYS_CQL_KEYSPACE" default:"ordersys"`
	// Username authenticates to the cluster; empty disables authentication.
	Username string `env:"ORDERSYS_CQL_USERNAME"`
	// Password goes with Username. It is a secret.
	Password string `env:"ORDERSYS_CQL_PASSWORD" secret:"true"`
	// LocalDC selects DC-aware routing; empty means token-aware round robin. It changes no
	// consistency level.
	LocalDC string `env:"ORDERSYS_CQL_LOCAL_DC"`
	// Consistency is the consistency level name, e.g. QUORUM or LOCAL_QUORUM.
	Consistency string `env:"ORDERSYS_CQL_CONSISTENCY" default:"QUORUM"`
	// SerialConsistency is the consistency of lightweight transactions (conditional appends,
	// leases): SERIAL, or LOCAL_SERIAL only when a single data center writes at a time (with
	// LOCAL_SERIAL, two data centers can both commit the same sequence).
	SerialConsistency string `env:"ORDERSYS_CQL_SERIAL_CONSISTENCY" default:"SERIAL"`
	// TLSEnabled turns TLS on with the system's CAs (a managed cluster with a public
	// certificate); a CA file, a client certificate or a key file turns it on too.
	TLSEnabled bool `env:"ORDERSYS_CQL_TLS_ENABLED"`
	// TLSCAFile: the nodes' certificates must chain to these CAs (PEM) and name the host dialled
	// (unless TLSSkipHostVerification).
	TLSCAFile string `env:"ORDERSYS_CQL_TLS_CA_FILE"`
	// TLSCertFile and TLSKeyFile are a client certificate and key (PEM), for nodes that require
	// client authentication; set, they turn TLS on too.
	TLSCertFile string `env:"ORDERSYS_CQL_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"ORDERSYS_CQL_TLS_KEY_FILE"`
	// TLSSkipHostVerification accepts node certificates that do not name the host (the chain is
	// still verified): for clusters reached through addresses their certificates do not list.
	TLSSkipHostVerification bool `env:"ORDERSYS_CQL_TLS_SKIP_HOST_VERIFICATION"`
}

// Kafka holds the Kafka connection settings. Only the services that talk to Kafka (cdc-relay,
// projector) embed it in their configuration; it is not part of Common.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `env:"ORDERSYS_KAFKA_BROKERS" default:"127.0.0.1:9092"`
	// TLSEnabled turns TLS on with the system's CAs (a managed cluster with a public
	// certificate); a CA file, a client certificate or a key file turns it on too.
	TLSEnabled bool `env:"ORDERSYS_KAFKA_TLS_ENABLED"`
	// TLSCAFile: the brokers' certificates must chain to these CAs (PEM) and name the host
	// dialled (unless TLSSkipHostVerification).
	TLSCAFile string `env:"ORDERSYS_KAFKA_TLS_CA_FILE"`
	// TLSCertFile and TLSKeyFile are a client certificate and key (PEM), for brokers that
	// require client authentication (mutual TLS); set, they turn TLS on too.
	TLSCertFile string `env:"ORDERSYS_KAFKA_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"ORDERSYS_KAFKA_TLS_KEY_FILE"`
	// TLSSkipHostVerification accepts broker certificates that do not name the host (the chain
	// is still verified): for brokers reached through addresses their certificates do not list.
	TLSSkipHostVerification bool `env:"ORDERSYS_KAFKA_TLS_SKIP_HOST_VERIFICATION"`
	// SASLMechanism turns SASL authentication on: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty:
	// none). PLAIN sends the password itself: use it over TLS only.
	SASLMechanism string `env:"ORDERSYS_KAFKA_SASL_MECHANISM"`
	// SASLUsername is the SASL user; required with SASLMechanism.
	SASLUsername string `env:"ORDERSYS_KAFKA_SASL_USERNAME"`
	// SASLPassword goes with SASLUsername. It is a secret.
	SASLPassword string `env:"ORDERSYS_KAFKA_SASL_PASSWORD" secret:"true"`
}

// PII configures the encryption of customers' personal data (crypto-shredding,
// docs/privacy.md). The command service, the projector and the query service embed it.
type PII struct {
	// KEKFile is the key-encryption key: a Tink AEAD keyset in JSON, in clear (a secret file,
	// mode 0600; `ordersysctl pii-kek new` writes one), whose primary key wraps each customer's
	// data key in customer_keys. Set, the command service encrypts the personal fields of
	// Customer events and snapshots, and the projector and the query service decrypt them.
	// Empty: personal data is written in clear (and EraseCustomer can only scrub the read
	// models). Every service that reads customer events needs the same file.
	KEKFile string `env:"ORDERSYS_PII_KEK_FILE"`
	// KeyCacheTTL is how long a process uses a data key without reading customer_keys again: an
	// erasure reaches the other processes' decoders at most this late.
	KeyCacheTTL time.Duration `env:"ORDERSYS_PII_KEY_CACHE_TTL" default:"30s"`
}

// Common is the configuration every service embeds: exactly the variables every long-running
// service reads (docs/configuration.md lists every variable of every binary).
//
// GRPCAddr and MetricsAddr have no tag default: they differ per service, so start from
// Defaults(grpcAddr, metricsAddr), which pre-fills them, and Load keeps a pre-filled value
// whenever its variable is not set.
type Common struct {
	// GRPCAddr is the gRPC listen address.
	GRPCAddr string `env:"ORDERSYS_GRPC_ADDR"`
	// MetricsAddr is the listen address of the HTTP /metrics and /healthz server.
	MetricsAddr string `env:"ORDERSYS_METRICS_ADDR"`
	// CQL holds the database settings.
	CQL CQL
	// OTLPEndpoint is the OTLP/gRPC collector address; empty disables trace export.
	OTLPEndpoint string `env:"ORDERSYS_OTLP_ENDPOINT" default:"127.0.0.1:4317"`
	// TraceSampleRatio is the fraction of new traces sampled (parent-based), 0..1.
	TraceSampleRatio float64 `env:"ORDERSYS_TRACE_SAMPLE_RATIO" default:"1.0"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"ORDERSYS_LOG_LEVEL" default:"info"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `env:"ORDERSYS_SHUTDOWN_TIMEOUT" default:"15s"`
}

// Defaults returns a Common whose per-service addresses are pre-filled; Load fills the rest.
func Defaults(grpcAddr, metricsAddr string) Common {
	return Common{GRPCAddr: grpcAddr, MetricsAddr: metricsAddr}
}

// Load fills the struct dst points to from the environment.
//
// For each field tagged env:"NAME": when NAME is set, its value is parsed; otherwise a value
// already in the field (non-zero) is kept; otherwise the default:"..." tag, if any, is parsed.
// A variable set to the empty string counts as set for string and []string fields (so
// ORDERSYS_OTLP_ENDPOINT= disables export) and as unset for the other types. Untagged struct
// fields are walked recursively. Every bad value is reported, each naming its variable.
func Load(dst any) error {
	return load(dst, os.LookupEnv)
}

// LoadFrom is Load reading variables through lookup instead of the process environment.
func LoadFrom(dst any, lookup func(string) (string, bool)) error {
	return load(dst, lookup)
}

func load(dst any, lookup func(string) (string, bool)) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", dst)
	}
	var errs []error
	walk(rv.Elem(), func(f reflect.Value, sf reflect.StructField, _ string, _ reflect.Type) {
		name, ok := sf.Tag.Lookup("env")
		if !ok || name == "" {
			return
		}
		raw, set := lookup(name)
		if set && raw == "" && !emptyIsValue(f) {
			set = false
		}
		if !set {
			if !f.IsZero() {
				return
			}
			def, ok := sf.Tag.Lookup("default")
			if !ok {
				return
			}
			if err := setValue(f, def); err != nil {
				errs = append(errs, fmt.Errorf("%s: default %w", name, err))
			}
			return
		}
		if err := setValue(f, raw); err != nil {
			if isSecret(sf) {
				err = fmt.Errorf("invalid %s value (not shown: secret)", f.Type())
			}
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	})
	return errors.Join(errs...)
}

var durationType = reflect.TypeFor[time.Duration]()

// walk calls fn for every settable leaf field of v (v a struct), recursing into struct fields
// that have no env tag. path is the dotted Go field path, embedded structs adding no element;
// owner is the struct type that declares the field.
func walk(v reflect.Value, fn func(f reflect.Value, sf reflect.StructField, path string, owner reflect.Type)) {
	walkPrefix(v, "", fn)
}

func walkPrefix(v reflect.Value, prefix string, fn func(reflect.Value, reflect.StructField, string, reflect.Type)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		path := prefix + sf.Name
		if _, tagged := sf.Tag.Lookup("env"); !tagged && f.Kind() == reflect.Struct {
			next := path + "."
			if sf.Anonymous {
				next = prefix
			}
			walkPrefix(f, next, fn)
			continue
		}
		fn(f, sf, path, t)
	}
}

func emptyIsValue(f reflect.Value) bool {
	return f.Kind() == reflect.String || (f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String)
}

func setValue(f reflect.Value, raw string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 250ms, 15s, 24h)", raw)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported field type %s", f.Type())
		}
		var items []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", raw)
		}
		f.SetBool(b)
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}

// Mask replaces the value of a non-empty secret in String and LogValue.
const Mask = "***"

// String renders every leaf field of cfg (a struct or a pointer to one) as
// "Path=value" pairs separated by spaces, in field order, with non-empty secrets shown as ***.
// Nested struct fields appear as "CQL.Hosts"; lists are comma separated.
func String(cfg any) string {
	var b strings.Builder
	fields(cfg, func(path, val string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(path)
		b.WriteByte('=')
		if val == "" || strings.ContainsAny(val, " \"=") {
			val = strconv.Quote(val)
		}
		b.WriteString(val)
	})
	return b.String()
}

// LogValue renders cfg (a struct or a pointer to one) as a slog group for the start-up log,
// one attribute per leaf field, nested structs as nested groups and non-empty secrets as ***.
// It is a function rather than a method so that a service config embedding Common still
// renders all of its own fields: slog.Any("config", config.LogValue(cfg)).
func LogValue(cfg any) slog.Value {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return slog.StringValue(fmt.Sprint(cfg))
	}
	return slog.GroupValue(groupAttrs(v)...)
}

func groupAttrs(v reflect.Value) []slog.Attr {
	var attrs []slog.Attr
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if _, tagged := sf.Tag.Lookup("env"); !tagged && f.Kind() == reflect.Struct {
			if sf.Anonymous {
				attrs = append(attrs, groupAttrs(f)...)
			} else {
				attrs = append(attrs, slog.Attr{Key: sf.Name, Value: slog.GroupValue(groupAttrs(f)...)})
			}
			continue
		}
		attrs = append(attrs, slog.String(sf.Name, render(f, sf)))
	}
	return attrs
}

func fields(cfg any, fn func(path, val string)) {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	if !v.IsValid() || v.Kind() != reflect.Struct {
		fn("value", fmt.Sprint(cfg))
		return
	}
	walk(v, func(f reflect.Value, sf reflect.StructField, path string, _ reflect.Type) {
		fn(path, render(f, sf))
	})
}

// render is format, with the non-empty value of a secret field masked.
func render(f reflect.Value, sf reflect.StructField) string {
	s := format(f)
	if isSecret(sf) && s != "" {
		return Mask
	}
	return s
}

// format renders a field's value in the form its variable is written.
func format(f reflect.Value) string {
	switch {
	case f.Type() == durationType:
		return time.Duration(f.Int()).String()
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		return strings.Join(f.Convert(reflect.TypeFor[[]string]()).Interface().([]string), ",")
	case f.Kind() == reflect.Float64:
		return strconv.FormatFloat(f.Float(), 'g', -1, 64)
	default:
		return fmt.Sprint(f.Interface())
	}
}

func isSecret(sf reflect.StructField) bool {
	secret, _ := strconv.ParseBool(sf.Tag.Get("secret"))
	return secret
}
