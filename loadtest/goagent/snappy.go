package main

// The stock agent's only compressor (agent/transport/compressor/snappy.go): the snappy framing
// (stream) format of github.com/golang/snappy, registered as "snappy" and used on both RPCs.

import (
	"io"

	"github.com/golang/snappy"
	"google.golang.org/grpc/encoding"
)

type snappyCompressor struct{}

func (snappyCompressor) Name() string { return "snappy" }

func (snappyCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return snappy.NewBufferedWriter(w), nil
}

func (snappyCompressor) Decompress(r io.Reader) (io.Reader, error) {
	return snappy.NewReader(r), nil
}

func init() { encoding.RegisterCompressor(snappyCompressor{}) }
