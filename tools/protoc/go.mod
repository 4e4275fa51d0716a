// The protoc plugins of `make generate` (buf.gen.yaml), at the versions pkg/gen names. A module of
// their own: buf (../go.mod) requires a newer google.golang.org/protobuf, which would change
// protoc-gen-go. Run with GOWORK=off go -C tools/protoc tool -n protoc-gen-go (mk/proto.mk).
module github.com/ordersys/ordersys/tools/protoc

go 1.26.0

tool (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc
	google.golang.org/protobuf/cmd/protoc-gen-go
)

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
