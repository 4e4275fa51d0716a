package main

import (
	"bytes"
	"net"
	"testing"

	"google.golang.org/grpc"
)

// fakeService serves what register registers on a loopback port until the test ends, and
// returns a function that runs ordersysctl with addrFlag (e.g. "-projector") naming it and a
// 10 s call timeout: its output (stdout then stderr) and exit code.
func fakeService(t *testing.T, addrFlag string, register func(*grpc.Server)) func(args ...string) (string, int) {
	t.Helper()
	srv := grpc.NewServer()
	register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(append([]string{addrFlag, ln.Addr().String(), "-timeout", "10s"}, args...), &out, &errOut)
		return out.String() + errOut.String(), code
	}
}
