package main

// The Transfer stream as the stock agent runs it (agent/transport/transfer.go): a sender that
// drains the record buffer every 100 ms into one PackagedData, a receiver that handles each
// Command; when either ends both stop, the agent waits 5 s and starts over.

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

const transferMethod = "/grpc.Transfer/Transfer"

var transferDesc = &grpc.StreamDesc{StreamName: "Transfer", ServerStreams: true, ClientStreams: true}

// buffer holds records until the next send tick (the agent's ring of 2048 slots).
type buffer struct {
	mu      sync.Mutex
	records []Record
	dropped int
}

func (b *buffer) add(dataType int32, fields map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.records) >= 2048 {
		b.dropped++
		return
	}
	b.records = append(b.records, Record{DataType: dataType, Timestamp: time.Now().Unix(), Body: encodeItem(fields)})
}

func (b *buffer) drain() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.records
	b.records = nil
	return out
}

// runTransfer runs one stream until it ends; it returns whether a connection was had and the reason.
func (a *agent) runTransfer(ctx context.Context) (bool, error) {
	conn, err := a.conn.get(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := conn.NewStream(ctx, transferDesc, transferMethod, grpc.UseCompressor("snappy"))
	if err != nil {
		return true, err
	}
	a.emit("stream_open", nil)
	errs := make(chan error, 2)
	go func() { errs <- a.sendLoop(ctx, stream) }()
	go func() { errs <- a.receiveLoop(stream) }()
	err = <-errs
	cancel()
	return true, err
}

func (a *agent) sendLoop(ctx context.Context, stream grpc.ClientStream) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		records := a.buf.drain()
		if len(records) == 0 {
			continue
		}
		msg := a.header()
		msg.Records = records
		if err := stream.SendMsg(msg); err != nil {
			// The agent only logs a send error; the receiver sees the stream's end.
			a.emit("send_error", map[string]any{"err": err.Error(), "records": len(records)})
			return err
		}
		a.sent.Add(int64(len(records)))
	}
}

func (a *agent) receiveLoop(stream grpc.ClientStream) error {
	for {
		cmd := &Command{}
		if err := stream.RecvMsg(cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
		a.handleCommand(cmd)
	}
}

// handleCommand follows the agent's handleReceive: a present Task wins over Config.
func (a *agent) handleCommand(cmd *Command) {
	if cmd.Task == nil {
		names := make([]string, 0, len(cmd.Configs))
		for _, c := range cmd.Configs {
			names = append(names, c.Name+"@"+c.Version)
		}
		a.setPlugins(cmd.Configs)
		// An empty Config is the complete desired state: every plugin is uninstalled.
		a.emit("config", map[string]any{"plugins": names, "uninstall_all": len(cmd.Configs) == 0})
		return
	}
	t := cmd.Task
	a.emit("task", map[string]any{"data_type": t.DataType, "name": t.ObjectName, "token": t.Token, "data": t.Data})
	if t.ObjectName == a.opts.product {
		a.agentTask(t)
		return
	}
	if !a.hasPlugin(t.ObjectName) {
		a.buf.add(1010, map[string]string{"level": "error", "source": "transfer", "msg": "plugin " + t.ObjectName + " not found"})
		return
	}
	// The plugin's answer, as plugins answer tasks: token, status, msg.
	a.buf.add(int32(a.opts.taskAnswerType), map[string]string{
		"token": t.Token, "status": "succeed", "msg": "done by " + t.ObjectName,
		"data_type": strconv.Itoa(int(t.DataType)),
	})
}

// agentTask handles the data types the agent itself understands: 1050 upload, 1051 metadata,
// 1060 shutdown. Failures are reported as 5100 with the token.
func (a *agent) agentTask(t *Task) {
	switch t.DataType {
	case 1050:
		go a.upload(t)
	case 1051:
		a.emit("set_metadata", map[string]any{"data": t.Data})
	case 1060:
		a.emit("shutdown", map[string]any{"token": t.Token})
		a.stop()
	default:
		a.taskFailed(t.Token, "unknown task data type "+strconv.Itoa(int(t.DataType)))
	}
}

func (a *agent) taskFailed(token, msg string) {
	a.buf.add(5100, map[string]string{"token": token, "msg": msg, "status": "failed"})
}

func statusOf(err error) map[string]any {
	if errors.Is(err, io.EOF) {
		return map[string]any{"code": 0, "msg": "EOF"}
	}
	s, _ := status.FromError(err)
	return map[string]any{"code": int(s.Code()), "msg": s.Message()}
}
