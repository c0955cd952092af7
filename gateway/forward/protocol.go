package forward

import (
	"fmt"
	"strings"

	"connectrpc.com/connect"
)

// Protocol is the RPC protocol the gateway speaks to a backend. Whatever the
// backend protocol, clients may call the gateway with Connect, gRPC or
// gRPC-Web.
type Protocol int

const (
	// ProtocolGRPC is gRPC over HTTP/2, the default: every gRPC server and
	// every Connect server understands it.
	ProtocolGRPC Protocol = iota
	// ProtocolConnect is the Connect protocol. Bidirectional streaming
	// still needs HTTP/2.
	ProtocolConnect
	// ProtocolGRPCWeb is gRPC-Web, for backends behind infrastructure that
	// cannot pass HTTP trailers.
	ProtocolGRPCWeb
)

// ParseProtocol parses a protocol name as written in configuration:
// "grpc", "connect" or "grpcweb" (also "grpc-web"), in any case.
func ParseProtocol(name string) (Protocol, error) {
	switch strings.ToLower(name) {
	case "grpc":
		return ProtocolGRPC, nil
	case "connect":
		return ProtocolConnect, nil
	case "grpcweb", "grpc-web":
		return ProtocolGRPCWeb, nil
	}
	return 0, fmt.Errorf("forward: unknown protocol %q (want grpc, connect or grpcweb)", name)
}

// String returns the protocol's configuration name.
func (p Protocol) String() string {
	switch p {
	case ProtocolGRPC:
		return "grpc"
	case ProtocolConnect:
		return "connect"
	case ProtocolGRPCWeb:
		return "grpcweb"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// clientOption returns the connect client option that selects p.
func (p Protocol) clientOption() connect.ClientOption {
	switch p {
	case ProtocolConnect:
		return connect.WithClientOptions() // connect's default
	case ProtocolGRPCWeb:
		return connect.WithGRPCWeb()
	}
	return connect.WithGRPC()
}
