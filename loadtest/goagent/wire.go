package main

// A hand-written codec for the few Elkeid messages the agent uses (proto/elkeid.proto, field
// numbers of the stock agent's own proto). Hand-written rather than generated so that building
// the client needs nothing but the Go toolchain and the module proxy; protowire does the
// varint/length work, and decoding skips unknown fields as generated code would.

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
)

type wireMessage interface {
	marshal() []byte
	unmarshal(b []byte) error
}

// protoCodec replaces grpc-go's "proto" codec for this process: every message on the wire here
// is one of the wireMessage types below.
type protoCodec struct{}

func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(wireMessage)
	if !ok {
		return nil, fmt.Errorf("codec: %T is not an Elkeid message", v)
	}
	return m.marshal(), nil
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(wireMessage)
	if !ok {
		return fmt.Errorf("codec: %T is not an Elkeid message", v)
	}
	return m.unmarshal(data)
}

func init() { encoding.RegisterCodec(protoCodec{}) }

// Record is the agent's EncodedRecord: Body is a serialized Item.
type Record struct {
	DataType  int32
	Timestamp int64
	Body      []byte
}

// PackagedData is the agent's name for RawData.
type PackagedData struct {
	Records      []Record
	AgentID      string
	IntranetIPv4 []string
	ExtranetIPv4 []string
	IntranetIPv6 []string
	ExtranetIPv6 []string
	Hostname     string
	Version      string
	Product      string
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func (r Record) marshal() []byte {
	var b []byte
	b = appendVarint(b, 1, uint64(int64(r.DataType)))
	b = appendVarint(b, 2, uint64(r.Timestamp))
	return appendBytes(b, 3, r.Body)
}

func (p *PackagedData) marshal() []byte {
	var b []byte
	for _, r := range p.Records {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, r.marshal())
	}
	b = appendString(b, 2, p.AgentID)
	for i, list := range [][]string{p.IntranetIPv4, p.ExtranetIPv4, p.IntranetIPv6, p.ExtranetIPv6} {
		for _, ip := range list {
			b = protowire.AppendTag(b, protowire.Number(3+i), protowire.BytesType)
			b = protowire.AppendString(b, ip)
		}
	}
	b = appendString(b, 7, p.Hostname)
	b = appendString(b, 8, p.Version)
	return appendString(b, 9, p.Product)
}

func (p *PackagedData) unmarshal([]byte) error {
	return errors.New("the agent never receives PackagedData")
}

// encodeItem serializes Item{Fields} (map<string,string> = repeated entry {1 key, 2 value}),
// keys sorted so a record's bytes are reproducible.
func encodeItem(fields map[string]string) []byte {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, k)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, fields[k])
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

// Task is the agent's name for PluginTask.
type Task struct {
	DataType   int32
	ObjectName string
	Data       string
	Token      string
}

// ConfigItem is the agent's Config.
type ConfigItem struct {
	Name, Type, Version, SHA256, Signature, Detail string
	DownloadURLs                                   []string
}

// Command as the stock agent decodes it: field 1 (AgentCtrl) is not in its proto and is skipped.
type Command struct {
	Task    *Task
	Configs []ConfigItem
}

// fieldVisitor is called for each field of a message; unknown fields are ignored by the callers.
type fieldVisitor func(num protowire.Number, typ protowire.Type, varint uint64, bytes []byte) error

func walk(b []byte, visit fieldVisitor) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var varint uint64
		var bytes []byte
		switch typ {
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := visit(num, typ, varint, bytes); err != nil {
			return err
		}
	}
	return nil
}

func (t *Task) unmarshal(b []byte) error {
	return walk(b, func(num protowire.Number, _ protowire.Type, v uint64, s []byte) error {
		switch num {
		case 1:
			t.DataType = int32(v)
		case 2:
			t.ObjectName = string(s)
		case 3:
			t.Data = string(s)
		case 4:
			t.Token = string(s)
		}
		return nil
	})
}

func (c *ConfigItem) unmarshal(b []byte) error {
	return walk(b, func(num protowire.Number, _ protowire.Type, _ uint64, s []byte) error {
		switch num {
		case 1:
			c.Name = string(s)
		case 2:
			c.Type = string(s)
		case 3:
			c.Version = string(s)
		case 4:
			c.SHA256 = string(s)
		case 5:
			c.Signature = string(s)
		case 6:
			c.DownloadURLs = append(c.DownloadURLs, string(s))
		case 7:
			c.Detail = string(s)
		}
		return nil
	})
}

func (c *Command) marshal() []byte { return nil }

func (c *Command) unmarshal(b []byte) error {
	*c = Command{}
	return walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, s []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 2:
			// A present Task, even an empty one, makes the agent ignore Config.
			c.Task = &Task{}
			return c.Task.unmarshal(s)
		case 3:
			var item ConfigItem
			if err := item.unmarshal(s); err != nil {
				return err
			}
			c.Configs = append(c.Configs, item)
		}
		return nil
	})
}

// UploadRequest is the agent's FileUploadRequest.
type UploadRequest struct {
	Token string
	Data  []byte
}

func (u *UploadRequest) marshal() []byte {
	return appendBytes(appendString(nil, 1, u.Token), 2, u.Data)
}

func (u *UploadRequest) unmarshal([]byte) error {
	return errors.New("the agent never receives UploadRequest")
}

// UploadResponse: Status 0 = SUCCESS, 1 = FAILED.
type UploadResponse struct{ Status int32 }

func (u *UploadResponse) marshal() []byte { return appendVarint(nil, 1, uint64(u.Status)) }

func (u *UploadResponse) unmarshal(b []byte) error {
	return walk(b, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) error {
		if num == 1 {
			u.Status = int32(v)
		}
		return nil
	})
}
