// Package proto holds chute's API definition (chute/v1/chute.proto).
//
// The generated Go code in gen/chute/v1 is committed. To regenerate it,
// from the repository root:
//
//	go generate ./proto/...
//
// which runs buf, protoc-gen-go and protoc-gen-connect-go at the versions
// pinned in tools/go.mod (nothing to install by hand).
package proto

//go:generate sh -c "cd .. && go tool -modfile=tools/go.mod buf generate"
