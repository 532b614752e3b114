package wire

import (
	"io"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/zstd"
)

// Compression: clients and servers both offer zstd (fast and strong) and
// keep Connect's built-in gzip as the fallback for peers without zstd.
// Only messages larger than CompressMinBytes are compressed: small ones
// cost more to compress than they save.
const (
	Zstd             = "zstd"
	CompressMinBytes = 1024
	// maxDecoded bounds what one zstd frame may expand to, against
	// decompression bombs (Connect also bounds the decoded message).
	maxDecoded = 256 << 20
)

func newZstdCompressor() connect.Compressor {
	w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	return w
}

// zstdDecompressor adapts *zstd.Decoder (whose Close takes no error and
// ends the decoder for good) to connect.Decompressor, which is pooled.
type zstdDecompressor struct{ d *zstd.Decoder }

func newZstdDecompressor() connect.Decompressor {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecoded))
	return &zstdDecompressor{d: d}
}

func (z *zstdDecompressor) Read(p []byte) (int, error) { return z.d.Read(p) }
func (z *zstdDecompressor) Reset(r io.Reader) error    { return z.d.Reset(r) }
func (z *zstdDecompressor) Close() error               { return nil } // stays reusable in the pool

// HandlerCompression is the server's compression options.
func HandlerCompression() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCompression(Zstd, newZstdDecompressor, newZstdCompressor),
		connect.WithCompressMinBytes(CompressMinBytes),
	}
}

// ClientCompression is the client's: send zstd, accept zstd and gzip.
func ClientCompression() []connect.ClientOption {
	return []connect.ClientOption{
		connect.WithAcceptCompression(Zstd, newZstdDecompressor, newZstdCompressor),
		connect.WithSendCompression(Zstd),
		connect.WithCompressMinBytes(CompressMinBytes),
	}
}
