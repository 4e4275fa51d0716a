package grpcx

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordersys/ordersys/pkg/tlsfiles"
)

// Role is what a caller may do, from its token's roles claim.
type Role string

// The roles of ordersys. A token may carry several.
const (
	// RoleReader may call the query services.
	RoleReader Role = "reader"
	// RoleWriter may call the command services.
	RoleWriter Role = "writer"
	// RoleAdmin may call the admin services.
	RoleAdmin Role = "admin"
)

// ServiceRoles maps each protected gRPC service (full name) to the role it needs. A method of
// a service not listed here, other than health and (when enabled) reflection, is refused to
// every caller: nothing is open by omission.
var ServiceRoles = map[string]Role{
	"orders.v1.OrderCommandService":    RoleWriter,
	"orders.v1.CustomerCommandService": RoleWriter,
	"orders.v1.OrderQueryService":      RoleReader,
	"orders.v1.CustomerQueryService":   RoleReader,
	"orders.v1.RelayAdminService":      RoleAdmin,
	"orders.v1.ProjectorAdminService":  RoleAdmin,
}

// MethodRoles overrides ServiceRoles for single methods (full method names) that need another
// role than the rest of their service.
var MethodRoles = map[string]Role{
	// Erasing a customer's personal data is an administrator's act (docs/privacy.md).
	"/orders.v1.CustomerCommandService/EraseCustomer": RoleAdmin,
}

// openServices need no token: probes must reach health; reflection is open when served.
var openServices = []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}

// AuthConfig configures an Authenticator.
type AuthConfig struct {
	// JWKSFile is the JWKS document holding the keys tokens are signed with; it is read again
	// when it changes (key rotation without a restart).
	JWKSFile string
	// Issuer and Audience, when set, must be the token's iss and one of its aud.
	Issuer, Audience string
	// RolesClaim names the claim with the roles: a JSON array of strings, or one string of
	// space-separated roles (default "roles").
	RolesClaim string
	// Skew is the clock difference tolerated on exp, nbf and iat (default 30s).
	Skew time.Duration
}

// Principal is the authenticated caller of a call.
type Principal struct {
	// Subject is the token's sub: the user id events record.
	Subject string
	// Roles are the roles the token grants.
	Roles []Role
}

type principalKey struct{}

// PrincipalFromContext returns the caller the Authenticator verified, if the server has one.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticator verifies bearer tokens (JWT, signature by a JWKS key, issuer, audience, expiry)
// and the caller's role for the service called. A missing or invalid token fails with
// Unauthenticated, a valid token without the role with PermissionDenied; neither says which
// check failed.
type Authenticator struct {
	cfg AuthConfig

	keys *tlsfiles.Reloading[jwk.Set] // re-read when the file changes; a broken rotation keeps the last good keys
}

// NewAuthenticator reads the JWKS file and returns the authenticator.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 30 * time.Second
	}
	keys, err := tlsfiles.NewReloading([]string{cfg.JWKSFile}, func() (jwk.Set, error) { return readJWKS(cfg.JWKSFile) },
		func(err error) error { return fmt.Errorf("auth: JWKS file: %w", err) })
	if err != nil {
		return nil, err
	}
	return &Authenticator{cfg: cfg, keys: keys}, nil
}

// readJWKS reads a JWKS document holding at least one key.
func readJWKS(file string) (jwk.Set, error) {
	set, err := jwk.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", file, err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("auth: JWKS file %s holds no key", file)
	}
	return set, nil
}

var (
	errUnauthenticated = status.Error(codes.Unauthenticated, "missing or invalid bearer token")
)

// authorize checks the call's token and role and returns the context carrying the Principal.
func (a *Authenticator) authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	service := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(service, '/'); i >= 0 {
		service = service[:i]
	}
	if slices.Contains(openServices, service) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	raw, ok := bearer(md.Get("authorization"))
	if !ok {
		return ctx, errUnauthenticated
	}
	opts := []jwt.ParseOption{jwt.WithKeySet(a.keys.Get()), jwt.WithAcceptableSkew(a.cfg.Skew), jwt.WithRequiredClaim("exp"), jwt.WithRequiredClaim("sub")}
	if a.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.cfg.Issuer))
	}
	if a.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.cfg.Audience))
	}
	tok, err := jwt.Parse([]byte(raw), opts...)
	if err != nil {
		return ctx, errUnauthenticated
	}
	sub, _ := tok.Subject()
	if strings.TrimSpace(sub) == "" {
		return ctx, errUnauthenticated // events record the subject as their user: it must name one
	}
	p := Principal{Subject: sub, Roles: roles(tok, a.cfg.RolesClaim)}
	need, known := ServiceRoles[service]
	if m, ok := MethodRoles[fullMethod]; ok {
		need, known = m, true
	}
	if !known || !slices.Contains(p.Roles, need) {
		return ctx, status.Errorf(codes.PermissionDenied, "the token's roles do not allow %s", fullMethod)
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

// bearer returns the token of an "authorization: Bearer <token>" header.
func bearer(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// roles reads the roles claim: an array of strings or one space-separated string.
func roles(tok jwt.Token, claim string) []Role {
	var out []Role
	var list []any
	if err := tok.Get(claim, &list); err == nil {
		for _, v := range list {
			if s, ok := v.(string); ok {
				out = append(out, Role(s))
			}
		}
		return out
	}
	var s string
	if err := tok.Get(claim, &s); err == nil {
		for _, f := range strings.Fields(s) {
			out = append(out, Role(f))
		}
	}
	return out
}

// UnaryInterceptor returns the interceptor checking unary calls.
func (a *Authenticator) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor returns the interceptor checking streaming calls.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	}
}

// principalStream is a ServerStream whose context carries the Principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the context with the Principal.
func (s *principalStream) Context() context.Context { return s.ctx }
