package grpcx

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/ordersys/ordersys/pkg/config"
)

// DefaultKeepaliveMinTime is Security.KeepaliveMinTime when zero (and the configuration's
// default, ORDERSYS_GRPC_KEEPALIVE_MIN_TIME).
const DefaultKeepaliveMinTime = 10 * time.Second

// Security is how a Server protects itself; LoadSecurity builds it from the configuration.
// The zero value is a plaintext server without tokens and with gRPC's default limits.
type Security struct {
	// Credentials are the transport credentials (nil: plaintext).
	Credentials credentials.TransportCredentials
	// Auth verifies tokens and roles (nil: every caller is let in).
	Auth *Authenticator
	// NoReflection leaves server reflection out.
	NoReflection bool
	// MaxRecvBytes bounds one request message (0: gRPC's default, 4 MiB).
	MaxRecvBytes int
	// MaxConcurrentStreams bounds the concurrent calls of one connection (0: unbounded).
	MaxConcurrentStreams int
	// DefaultTimeout bounds a call whose client set no deadline (0: unbounded).
	DefaultTimeout time.Duration
	// KeepaliveMinTime is the shortest interval between client pings the server tolerates; a
	// client pinging faster is disconnected (GOAWAY "too_many_pings"). Zero:
	// DefaultKeepaliveMinTime.
	KeepaliveMinTime time.Duration
}

// LoadSecurity reads the certificate and key files named by c and returns the server's
// Security, or an error naming the setting that cannot be used.
func LoadSecurity(c config.GRPCServer) (Security, error) {
	s := Security{NoReflection: !c.Reflection, MaxRecvBytes: c.MaxRecvBytes,
		MaxConcurrentStreams: c.MaxConcurrentStreams, DefaultTimeout: c.DefaultTimeout, KeepaliveMinTime: c.KeepaliveMinTime}
	if c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSClientCAFile != "" {
		creds, err := TLSFiles{CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile, ClientCAFile: c.TLSClientCAFile}.ServerCredentials()
		if err != nil {
			return s, err
		}
		s.Credentials = creds
	}
	if c.AuthJWKSFile != "" {
		a, err := NewAuthenticator(AuthConfig{JWKSFile: c.AuthJWKSFile, Issuer: c.AuthIssuer, Audience: c.AuthAudience, RolesClaim: c.AuthRolesClaim})
		if err != nil {
			return s, err
		}
		s.Auth = a
	}
	return s, nil
}

// serverOptions returns the grpc options and interceptors that apply s.
func (s Security) serverOptions() (opts []grpc.ServerOption, unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) {
	if s.Credentials != nil {
		opts = append(opts, grpc.Creds(s.Credentials))
	}
	if s.MaxRecvBytes > 0 {
		opts = append(opts, grpc.MaxRecvMsgSize(s.MaxRecvBytes))
	}
	if s.MaxConcurrentStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(s.MaxConcurrentStreams)))
	}
	minTime := s.KeepaliveMinTime
	if minTime <= 0 {
		minTime = DefaultKeepaliveMinTime
	}
	opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minTime, PermitWithoutStream: true}))
	if d := s.DefaultTimeout; d > 0 {
		unary = append(unary, func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if _, ok := ctx.Deadline(); !ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			return h(ctx, req)
		})
	}
	if s.Auth != nil {
		unary = append(unary, s.Auth.UnaryInterceptor())
		stream = append(stream, s.Auth.StreamInterceptor())
	}
	return opts, unary, stream
}
