package main

// handshake-load: a reconnect storm as a fleet of stock agents makes it. K dialers each run new
// sessions back to back: a fresh mTLS dial (the connector's own dial options, so the TLS and
// HTTP/2 setup is exactly the agent's), the Transfer stream, one RawData (AgentID + heartbeat),
// half-close, read to the server's status, close. It counts sessions completed and failed in a
// measured window after a warm-up and, given the server's pid on this host, the server's CPU
// (utime+stime from /proc) over the same window, so "sessions per server CPU-second" comes from
// one place. It prints one JSON line ("handshake_load") at the end.
//
//   goagent handshake-load -addr H:P -ca CA -cert C -key K [-concurrency 8] [-warmup 2s]
//       [-duration 15s] [-server-pid PID[,PID...]] [-local-addrs 127.0.0.2,...] [-encoding snappy|identity]
//
// Several server pids (gateway processes sharing one port) report their summed CPU; the client's
// own CPU over the window is reported too (it shares the machine's cores with the server).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

type handshakeOptions struct {
	concurrency int
	warmup      time.Duration
	serverPids  []int
	localAddrs  []string
	encoding    string
}

// handshakeFlagNames are the flags of this sub-command; every other flag is the agent's own
// (parseFlags), so -addr, -ca, -cert, -key, -server-name, -dial-timeout mean what they mean there.
var handshakeFlagNames = map[string]bool{
	"concurrency": true, "warmup": true, "server-pid": true, "local-addrs": true, "encoding": true,
}

func parseHandshakeFlags(args []string) (*options, *handshakeOptions, error) {
	var mine, rest []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || !handshakeFlagNames[name] {
			rest = append(rest, args[i])
			continue
		}
		mine = append(mine, args[i])
		if !hasValue && i+1 < len(args) {
			i++
			mine = append(mine, args[i])
		}
	}
	fs := flag.NewFlagSet("goagent handshake-load", flag.ContinueOnError)
	h := &handshakeOptions{}
	fs.IntVar(&h.concurrency, "concurrency", 8, "sessions in flight at once (dialers)")
	fs.DurationVar(&h.warmup, "warmup", 2*time.Second, "load before the measured window")
	pids := fs.String("server-pid", "", "pid(s) of the server on this host, comma-separated: their summed CPU over the window is reported")
	locals := fs.String("local-addrs", "", "source addresses, comma-separated, one per dialer in turn (more ephemeral ports)")
	fs.StringVar(&h.encoding, "encoding", "snappy", "message encoding: snappy (the agent's) or identity")
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprintln(os.Stderr, handshakeUsage)
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
			return nil, nil, flag.ErrHelp
		}
	}
	if err := fs.Parse(mine); err != nil {
		return nil, nil, err
	}
	o, err := parseFlags(rest)
	if err != nil {
		return nil, nil, err
	}
	if o.duration <= 0 {
		o.duration = 15 * time.Second
	}
	if h.concurrency < 1 || (h.encoding != "snappy" && h.encoding != "identity") {
		return nil, nil, fmt.Errorf("goagent handshake-load: -concurrency ≥ 1 and -encoding snappy|identity")
	}
	h.localAddrs = splitList(*locals)
	for _, p := range splitList(*pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return nil, nil, fmt.Errorf("goagent handshake-load: -server-pid %q: want pids, comma-separated", *pids)
		}
		h.serverPids = append(h.serverPids, pid)
	}
	return o, h, nil
}

// handshakeLoad holds one run's counters; completed/failed count sessions that ended.
type handshakeLoad struct {
	a         *agent
	h         *handshakeOptions
	dial      []grpc.DialOption
	call      []grpc.CallOption
	heartbeat []byte
	completed atomic.Int64
	failed    atomic.Int64
	errMu     sync.Mutex
	errs      map[string]int
}

const handshakeUsage = `usage: goagent handshake-load -addr H:P -ca CA -cert C -key K [flags]

A reconnect storm: each dialer runs sessions back to back (new mTLS dial, Transfer stream, one
RawData, half-close, the server's status, close). Prints one JSON line "handshake_load" with the
sessions completed and failed in the window and, with -server-pid, the server's CPU over it.
The agent's flags apply (-addr: the first address is dialled, -server-name, -dial-timeout: one
session's timeout); -duration is the measured window (default 15s). Flags of this mode:`

func runHandshakeLoad(args []string) int {
	o, h, err := parseHandshakeFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	a := &agent{opts: o}
	conn, err := newConnector(o, a.emit)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l := &handshakeLoad{a: a, h: h, dial: conn.options, heartbeat: encodeItem(a.heartbeatFields()), errs: map[string]int{}}
	if h.encoding == "snappy" {
		l.call = []grpc.CallOption{grpc.UseCompressor("snappy")}
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < h.concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.dialer(ctx, i)
		}()
	}
	time.Sleep(h.warmup)
	self := []int{os.Getpid()}
	c0, f0, cpu0, own0 := l.completed.Load(), l.failed.Load(), serverCPU(h.serverPids), serverCPU(self)
	start := time.Now()
	time.Sleep(o.duration)
	c1, f1, cpu1, own1 := l.completed.Load(), l.failed.Load(), serverCPU(h.serverPids), serverCPU(self)
	window := time.Since(start).Seconds()
	stop()
	wg.Wait()
	report := map[string]any{
		"concurrency": h.concurrency, "encoding": h.encoding, "window_s": window,
		"completed": c1 - c0, "failed": f1 - f0, "completed_total": l.completed.Load(),
		"failed_total": l.failed.Load(), "errors": l.errs, "per_s": float64(c1-c0) / window,
	}
	if own0 >= 0 && own1 >= 0 {
		report["client_cpu_s"] = own1 - own0
	}
	if cpu0 >= 0 && cpu1 >= 0 {
		report["server_cpu_s"] = cpu1 - cpu0
		if cpu1 > cpu0 {
			report["per_server_cpu_s"] = float64(c1-c0) / (cpu1 - cpu0)
		}
	}
	a.emit("handshake_load", report)
	return 0
}

// dialer runs sessions back to back until ctx ends; a session cut by ctx is not counted.
func (l *handshakeLoad) dialer(ctx context.Context, index int) {
	dial := l.dial
	if n := len(l.h.localAddrs); n > 0 {
		local := &net.TCPAddr{IP: net.ParseIP(l.h.localAddrs[index%n])}
		d := &net.Dialer{LocalAddr: local}
		dial = append(append([]grpc.DialOption{}, l.dial...), grpc.WithContextDialer(
			func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	}
	for ctx.Err() == nil {
		err := l.session(ctx, dial)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			l.failed.Add(1)
			l.countError(err)
		default:
			l.completed.Add(1)
		}
	}
}

// session is one agent connection's life, cut short: dial, stream, first message, status, close.
// The session's timeout cancels its context rather than being a deadline on it: a deadline would
// go out as grpc-timeout, which the stock agent's Transfer (a cancel-only context) never sends,
// and would have the server arm a deadline timer per call that real agents do not cost it.
func (l *handshakeLoad) session(ctx context.Context, dial []grpc.DialOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeout := time.AfterFunc(l.a.opts.dialTimeout, cancel)
	defer timeout.Stop()
	//nolint:staticcheck // DialContext with WithBlock is what the stock agent calls.
	conn, err := grpc.DialContext(ctx, l.a.opts.addrs[0], dial...)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := conn.NewStream(ctx, transferDesc, transferMethod, l.call...)
	if err != nil {
		return err
	}
	msg := l.a.header()
	msg.AgentID = newUUID()
	msg.Records = []Record{{DataType: 1000, Timestamp: time.Now().Unix(), Body: l.heartbeat}}
	if err := stream.SendMsg(msg); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if err := stream.RecvMsg(&Command{}); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the server's OK status
			}
			return err
		}
	}
}

// addrPattern matches host:port pairs in error texts: errors differing only there count as one.
var addrPattern = regexp.MustCompile(`\[?[0-9a-fA-F.:]+\]?:\d+`)

func (l *handshakeLoad) countError(err error) {
	key := addrPattern.ReplaceAllString(err.Error(), "ADDR")
	if len(key) > 120 {
		key = key[:120]
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if _, seen := l.errs[key]; seen || len(l.errs) < 20 {
		l.errs[key]++
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// serverCPU is the processes' utime+stime in seconds (all their threads, summed), -1 when any is
// unknown or none is given.
func serverCPU(pids []int) float64 {
	if len(pids) == 0 {
		return -1
	}
	sum := 0.0
	for _, pid := range pids {
		s := processCPU(pid)
		if s < 0 {
			return -1
		}
		sum += s
	}
	return sum
}

// processCPU is one process's utime+stime in seconds, -1 when unknown. USER_HZ is 100 on every
// Linux this runs on.
func processCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (utime + stime) / 100
}
