package main

// Send-time stamps of the load mode (load.go), in the format of loadtest/bench/stamp.ts: the Item
// field `sent_us` = "<16 digits CLOCK_MONOTONIC µs>:<10 digits message seq>:<4 digits index>".
// A message is encoded once per template with placeholder stamps and patched before each send.
// CLOCK_MONOTONIC is one clock for every process of the machine (Node's process.hrtime too), so
// the benchmark's Kafka consumer can subtract the stamp from its own clock.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	stampField    = "sent_us"
	stampUsDigits = 16
	stampSeqDigit = 10
	stampIdxDigit = 4
	stampLength   = stampUsDigits + 1 + stampSeqDigit + 1 + stampIdxDigit
	maxStampIndex = 10000
)

// stampMarker is what precedes a stamp value in an encoded Item: the entry's key, then the
// value's tag and length.
var stampMarker = append(append([]byte{0x0a, byte(len(stampField))}, stampField...), 0x12, stampLength)

func monotonicMicros() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Sec*1_000_000 + ts.Nsec/1000
}

// encodedMessage is a PackagedData encoded already: grpc-go's codec (wire.go) sends its bytes.
type encodedMessage []byte

func (m encodedMessage) marshal() []byte        { return m }
func (m encodedMessage) unmarshal([]byte) error { return fmt.Errorf("encodedMessage is send-only") }

// stampedMessage is one template: the encoded PackagedData and where its stamps are.
type stampedMessage struct {
	bytes     []byte
	stamps    []int
	bodyBytes int
}

func newStampedMessage(header *PackagedData, records, recordBytes int, seed uint64) stampedMessage {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	now := time.Now().Unix()
	msg := *header
	body := 0
	for i := range records {
		placeholder := fmt.Sprintf("%s:%s:%0*d", strings.Repeat("0", stampUsDigits), strings.Repeat("0", stampSeqDigit), stampIdxDigit, i)
		b := execBody(rng, placeholder, msg.Hostname, recordBytes)
		body += len(b)
		msg.Records = append(msg.Records, Record{DataType: 59, Timestamp: now, Body: b})
	}
	out := stampedMessage{bytes: msg.marshal(), bodyBytes: body}
	for at := 0; ; {
		k := bytes.Index(out.bytes[at:], stampMarker)
		if k < 0 {
			break
		}
		at += k + len(stampMarker)
		out.stamps = append(out.stamps, at)
	}
	if len(out.stamps) != records {
		panic(fmt.Sprintf("stamp: found %d stamps, want %d", len(out.stamps), records))
	}
	return out
}

// stamp returns a copy of the template with the send time and seq written into every stamp.
func (t *stampedMessage) stamp(seq int) encodedMessage {
	out := make([]byte, len(t.bytes))
	copy(out, t.bytes)
	us := monotonicMicros()
	for _, at := range t.stamps {
		writeDigits(out[at:at+stampUsDigits], uint64(us))
		writeDigits(out[at+stampUsDigits+1:at+stampUsDigits+1+stampSeqDigit], uint64(seq))
	}
	return out
}

func writeDigits(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = '0' + byte(v%10)
		v /= 10
	}
}

var (
	loadExes = []string{"/usr/bin/bash", "/usr/bin/python3.11", "/usr/sbin/sshd", "/usr/bin/curl", "/usr/bin/git",
		"/usr/local/bin/node", "/usr/bin/dockerd", "/usr/bin/systemctl", "/usr/sbin/cron", "/usr/bin/ps"}
	loadArgs = []string{"-c", "--config=/etc/app/config.yaml", "/opt/app/bin/worker.py", "--log-level=info",
		"status nginx.service", "/var/lib/docker/containers", "fetch --prune origin", "aux --sort=-%cpu"}
	loadUsers = []string{"root", "www-data", "app", "postgres", "deploy", "nobody"}
)

// execBody is an execve event (data type 59) as the driver plugin reports it: an Item with the
// stamp first and about `size` bytes in all; hashes are random, paths from small dictionaries.
func execBody(rng *rand.Rand, stamp, hostname string, size int) []byte {
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	hexs := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	exe := pick(loadExes)
	pid, ppid := 1000+rng.IntN(4_000_000), 1+rng.IntN(1000)
	fields := [][2]string{
		{stampField, stamp}, {"uid", "0"}, {"exe", exe}, {"pid", fmt.Sprint(pid)}, {"ppid", fmt.Sprint(ppid)},
		{"comm", exe[strings.LastIndexByte(exe, '/')+1:]}, {"nodename", hostname},
		{"pns", fmt.Sprint(4026531836 + rng.IntN(400))}, {"root_pns", "4026531836"}, {"dip", "-1"},
		{"dport", "-1"}, {"sip", "-1"}, {"sport", "-1"}, {"sa_family", "-1"},
		{"pid_tree", fmt.Sprintf("%d.%s<%d.bash<1.systemd", pid, "x", ppid)}, {"tty", "pts0"},
		{"exe_hash", hexs(16)}, {"username", pick(loadUsers)}, {"run_path", "/opt/app"},
		{"stdin", "/dev/null"}, {"stdout", "pipe:["}, {"res", "0"},
	}
	argv := exe + " " + pick(loadArgs)
	for len(encodeItemOrdered(append(fields, [2]string{"argv", argv}))) < size {
		argv += " " + pick(loadArgs) + " --id=" + hexs(8)
	}
	return encodeItemOrdered(append(fields, [2]string{"argv", argv}))
}

// encodeItemOrdered is encodeItem with the entries in the given order (the stamp first).
func encodeItemOrdered(fields [][2]string) []byte {
	var b []byte
	for _, kv := range fields {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, kv[0])
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, kv[1])
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

// loadHeartbeat is the first message's agent heartbeat (data type 1000): the 40 fields a stock
// agent sends (docs/elkeid-protocol.md §1.9), formatted as it formats them. A server keeps what it
// makes of them for as long as the agent is connected, so the idle figures count it.
func loadHeartbeat() map[string]string {
	return map[string]string{
		"kernel_version": "6.1.0-18-amd64", "arch": "x86_64", "platform": "debian",
		"platform_family": "debian", "platform_version": "12", "state": "running", "state_detail": "[]",
		"idc": "default", "region": "default", "net_mode": "sd", "rx_speed": "1234.56789012",
		"tx_speed": "987.65432100", "cpu": "0.01234567", "rss": "45678592", "read_speed": "0.00000000",
		"write_speed": "4096.00000000", "pid": "1234", "nfd": "37", "start_time": "1700000000",
		"tx_tps": "1.50000000", "rx_tps": "0.75000000", "du": "10485760", "ngr": "42", "nproc": "2",
		"total_mem": "16777216000", "load_1": "0.12000000", "load_5": "0.08000000", "load_15": "0.05000000",
		"running_procs": "3", "total_procs": "250", "host_serial": "00123456789", "host_id": "20240101",
		"host_model": "7920", "host_vendor": "Dell Inc.", "dns": "8.8.8.8,1.1.1.1", "gateway": "10.0.0.1",
		"cpu_name": "AMD EPYC 7B13", "boot_time": "1699990000", "cpu_usage": "0.05123456",
		"mem_usage": "0.41234567",
	}
}
