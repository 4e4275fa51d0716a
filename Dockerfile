# syntax=docker/dockerfile:1
#
# One image holding the ordersys binaries (command, query, cdc-relay, projector, migrate, and the
# operators' CLI ordersysctl) and
# grpc_health_probe (used by compose health checks and the chart's `helm test` pods).
# Build from the repository root, with the Go workspace:
#
#   docker build -t ordersys:dev .                      # all binaries; pick one with the command
#   docker build --target migrate -t ordersys-migrate .  # the migration step as its own entry point
#
# Every service target (command, query, cdc-relay, projector, migrate) is the same runtime image
# with ENTRYPOINT set to that binary. The runtime is distroless static, non-root (uid/gid 65532),
# no shell, no package manager; the binaries are static (CGO_ENABLED=0).

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
# grpc_health_probe, built from its own module (outside the workspace) so a source change never
# rebuilds it.
ARG GRPC_HEALTH_PROBE_VERSION=v0.4.61
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOWORK=off GOBIN=/out go install -ldflags="-s -w" \
	github.com/grpc-ecosystem/grpc-health-probe@${GRPC_HEALTH_PROBE_VERSION} && \
	mv /out/grpc-health-probe /out/grpc_health_probe
# Module files first (go.* = go.mod and, once the module has dependencies, go.sum). go.work lists
# every module, so each one's go.mod must be present (deploy/check's dependencies are not
# downloaded by the build below: `go build` fetches only what the built packages import).
COPY go.work* ./
COPY pkg/go.* pkg/
COPY services/command/go.* services/command/
COPY services/query/go.* services/query/
COPY services/cdc-relay/go.* services/cdc-relay/
COPY services/projector/go.* services/projector/
COPY services/ordersysctl/go.* services/ordersysctl/
COPY deploy/check/go.* deploy/check/
COPY e2e/go.* e2e/
COPY pkg/ pkg/
COPY services/ services/
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -ldflags="-s -w -X github.com/ordersys/ordersys/pkg/buildinfo.version=${VERSION}" -o /out/ \
	./services/command/cmd/command \
	./services/command/cmd/migrate \
	./services/query/cmd/query \
	./services/cdc-relay/cmd/cdc-relay \
	./services/projector/cmd/projector \
	./services/ordersysctl/cmd/ordersysctl

FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# gRPC: command 50051, query 50052, cdc-relay 50053, projector 50054; metrics 9101..9104.
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104

FROM runtime AS migrate
ENTRYPOINT ["/usr/local/bin/migrate"]

FROM runtime AS command
ENTRYPOINT ["/usr/local/bin/command"]

FROM runtime AS query
ENTRYPOINT ["/usr/local/bin/query"]

FROM runtime AS cdc-relay
ENTRYPOINT ["/usr/local/bin/cdc-relay"]

FROM runtime AS projector
ENTRYPOINT ["/usr/local/bin/projector"]

# Default target (last stage): all binaries, no fixed entry point; compose and the Helm chart
# select the binary with entrypoint/command. Without one it runs the command service.
FROM runtime AS ordersys
CMD ["/usr/local/bin/command"]
