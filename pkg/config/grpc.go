package config

import "time"

// GRPCServer is how a service's gRPC server protects itself: TLS (optionally mutual), bearer
// tokens with roles, and bounds on what one caller may ask. Every field is optional and the
// defaults suit a developer machine (plaintext, no tokens); `make run-secure` turns TLS and
// tokens on (docs/security.md, which also says what the chart does not support yet).
type GRPCServer struct {
	// TLSCertFile and TLSKeyFile are the server's certificate chain and key (PEM). Both set:
	// the server speaks TLS only. They are read again when they change (rotation without a
	// restart).
	TLSCertFile string `env:"ORDERSYS_GRPC_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"ORDERSYS_GRPC_TLS_KEY_FILE"`
	// TLSClientCAFile, when set, makes TLS mutual: every client must present a certificate
	// signed by one of these CAs (PEM).
	TLSClientCAFile string `env:"ORDERSYS_GRPC_TLS_CLIENT_CA_FILE"`
	// AuthJWKSFile, when set, turns authentication on: every call but health (and reflection,
	// when enabled) needs a bearer token signed by a key of this JWKS document, which is read
	// again when it changes.
	AuthJWKSFile string `env:"ORDERSYS_AUTH_JWKS_FILE"`
	// AuthIssuer and AuthAudience, when set, must be the token's iss and one of its aud.
	AuthIssuer   string `env:"ORDERSYS_AUTH_ISSUER"`
	AuthAudience string `env:"ORDERSYS_AUTH_AUDIENCE"`
	// AuthRolesClaim names the claim holding the caller's roles (reader, writer, admin).
	AuthRolesClaim string `env:"ORDERSYS_AUTH_ROLES_CLAIM" default:"roles"`
	// Reflection serves gRPC server reflection (open to every caller, like health).
	Reflection bool `env:"ORDERSYS_GRPC_REFLECTION" default:"true"`
	// MaxRecvBytes bounds one request message.
	MaxRecvBytes int `env:"ORDERSYS_GRPC_MAX_RECV_BYTES" default:"4194304"`
	// MaxConcurrentStreams bounds the concurrent calls of one connection.
	MaxConcurrentStreams int `env:"ORDERSYS_GRPC_MAX_CONCURRENT_STREAMS" default:"256"`
	// DefaultTimeout bounds a call whose client set no deadline.
	DefaultTimeout time.Duration `env:"ORDERSYS_GRPC_DEFAULT_TIMEOUT" default:"30s"`
	// KeepaliveMinTime is the shortest interval between a client's keepalive pings the server
	// tolerates; a client pinging faster is disconnected (GOAWAY "too_many_pings").
	KeepaliveMinTime time.Duration `env:"ORDERSYS_GRPC_KEEPALIVE_MIN_TIME" default:"10s"`
}
