package main

// Task 1050 as the stock agent runs it (agent/transport/file_ext.go): one upload at a time,
// files above buf_size × 600 refused, chunks of min(buf_size, 500 KiB) sent once per interval
// (1 s in the agent) on a FileExt stream of the shared connection, then CloseAndRecv. Only a
// failure is reported by the agent (data type 5100); success is the server's to report.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
)

const uploadMethod = "/grpc.FileExt/Upload"

var uploadDesc = &grpc.StreamDesc{StreamName: "Upload", ClientStreams: true}

func (a *agent) upload(t *Task) {
	if !a.uploading.CompareAndSwap(false, true) {
		a.taskFailed(t.Token, "last upload task hasn't completed")
		return
	}
	defer a.uploading.Store(false)
	err := a.doUpload(t)
	ev := map[string]any{"token": t.Token, "status": "succeed"}
	if err != nil {
		ev["status"], ev["err"] = "failed", err.Error()
		a.taskFailed(t.Token, err.Error())
	}
	a.emit("upload", ev)
}

func (a *agent) doUpload(t *Task) error {
	var req struct {
		Path    string `json:"path"`
		BufSize int    `json:"buf_size"`
	}
	if err := json.Unmarshal([]byte(t.Data), &req); err != nil {
		return err
	}
	if req.BufSize <= 0 {
		return fmt.Errorf("buf_size must be positive")
	}
	f, err := os.Open(req.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > int64(req.BufSize)*600 {
		return fmt.Errorf("file size %d exceeds buf_size*600", st.Size())
	}
	conn, err := a.conn.get(a.ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 600*time.Second)
	defer cancel()
	stream, err := conn.NewStream(ctx, uploadDesc, uploadMethod, grpc.UseCompressor("snappy"))
	if err != nil {
		return err
	}
	chunk := make([]byte, min(req.BufSize, 500*1024))
	for first := true; ; first = false {
		n, rerr := io.ReadFull(f, chunk)
		if n > 0 {
			if !first {
				time.Sleep(a.opts.uploadInterval)
			}
			if err := stream.SendMsg(&UploadRequest{Token: t.Token, Data: chunk[:n]}); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	resp := &UploadResponse{}
	if err := stream.RecvMsg(resp); err != nil {
		return err
	}
	if resp.Status != 0 {
		return fmt.Errorf("server answered FAILED")
	}
	return nil
}
