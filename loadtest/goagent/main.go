// goagent: an Elkeid-agent-like client on grpc-go, for interop tests and load. It behaves as
// the stock agent does on the wire (see connection.go, transfer.go, upload.go) and prints one
// JSON object per line on stdout for each thing that happens (connected, stream_end, config,
// task, upload, …), so tests can follow it.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	addrs                               []string
	caFile, certFile, keyFile           string
	serverName                          string
	agentID, hostname, version, product string
	heartbeatInterval, reconnectWait    time.Duration
	dialTimeout, duration               time.Duration
	uploadInterval                      time.Duration
	recordsPerSecond                    int
	recordType, taskAnswerType          int
	maxDialFailures                     int
	plugins                             []string
	heartbeatFields                     map[string]string
	intranetIPv4                        []string
	// curves is tls.Config.CurvePreferences: the key exchange groups offered, the first one with a
	// key share. nil means this Go's defaults.
	curves []tls.CurveID
}

type agent struct {
	opts      *options
	ctx       context.Context
	stop      context.CancelFunc
	conn      *connector
	buf       buffer
	sent      atomic.Int64
	uploading atomic.Bool

	pluginsMu sync.Mutex
	plugins   map[string]bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "handshake-load" {
		os.Exit(runHandshakeLoad(os.Args[2:])) // load_handshake.go
	}
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(runLoad(os.Args[2:]))
	}
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	if o.duration > 0 {
		ctx, stop = context.WithTimeout(ctx, o.duration)
	}
	a := &agent{opts: o, ctx: ctx, stop: stop, plugins: map[string]bool{}}
	for _, p := range o.plugins {
		a.plugins[p] = true
	}
	a.conn, err = newConnector(o, a.emit)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := a.run()
	a.emit("exit", map[string]any{"sent": a.sent.Load(), "dropped": a.buf.dropped})
	os.Exit(code)
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("goagent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: goagent -addr HOST:PORT -ca CA.pem -cert CERT.pem -key KEY.pem [options]   one agent\n"+
			"       goagent load ...   many agents for benchmarks (goagent load -h)\n"+
			"       goagent handshake-load ...   a reconnect storm (goagent handshake-load -h)\n\nOptions:")
		fs.PrintDefaults()
	}
	o := &options{}
	addrs := fs.String("addr", "", "gateway host:port, comma-separated list dialled in order (required)")
	fs.StringVar(&o.caFile, "ca", "", "CA certificate PEM the agent embeds (required)")
	fs.StringVar(&o.certFile, "cert", "", "client certificate PEM (required)")
	fs.StringVar(&o.keyFile, "key", "", "client key PEM (required)")
	fs.StringVar(&o.serverName, "server-name", "elkeid.com", "name the server certificate must carry")
	fs.StringVar(&o.agentID, "id", "", "AgentID (may be empty, as on hosts without DMI data)")
	fs.StringVar(&o.hostname, "hostname", "goagent", "Hostname header field")
	fs.StringVar(&o.version, "version", "1.7.0.24", "agent Version header field")
	fs.StringVar(&o.product, "product", "elkeid-agent", "Product header field (and the agent's task name)")
	fs.DurationVar(&o.heartbeatInterval, "heartbeat-interval", 60*time.Second, "agent heartbeat (1000) interval; the first is sent at start")
	fs.DurationVar(&o.reconnectWait, "reconnect-wait", 5*time.Second, "wait after a stream or dial ends")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 15*time.Second, "one dial's timeout")
	fs.DurationVar(&o.duration, "duration", 0, "run this long, then exit 0 (0 = until SIGTERM)")
	fs.DurationVar(&o.uploadInterval, "upload-interval", time.Second, "pause between upload chunks")
	fs.IntVar(&o.recordsPerSecond, "rate", 0, "plugin records per second (sent in the 100 ms ticks)")
	fs.IntVar(&o.recordType, "record-type", 5003, "data type of those records")
	fs.IntVar(&o.taskAnswerType, "task-answer-type", 5100, "data type a plugin answers its tasks with")
	fs.IntVar(&o.maxDialFailures, "max-dial-failures", 5, "consecutive dial failures after which the agent exits 1 (0 = never)")
	plugins := fs.String("plugins", "", "plugins running at start, comma-separated")
	fields := fs.String("heartbeat-fields", "", "extra heartbeat fields k=v,k=v (override the defaults)")
	ips := fs.String("intranet-ipv4", "10.0.0.2", "IntranetIPv4 header list, comma-separated")
	curves := fs.String("curves", "stock", "TLS key exchange groups offered, in order: stock (the stock agent's: "+
		"x25519,p256,p384,p521, Go < 1.23), go (this Go's defaults: X25519MLKEM768 first), or a list of "+
		"x25519mlkem768, x25519, p256, p384, p521")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *addrs == "" || o.caFile == "" || o.certFile == "" || o.keyFile == "" {
		return nil, fmt.Errorf("goagent: -addr, -ca, -cert and -key are required (-h for help)")
	}
	o.addrs = splitList(*addrs)
	o.plugins = splitList(*plugins)
	o.intranetIPv4 = splitList(*ips)
	var err error
	if o.curves, err = parseCurves(*curves); err != nil {
		return nil, err
	}
	o.heartbeatFields = map[string]string{}
	for _, kv := range splitList(*fields) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("goagent: -heartbeat-fields: %q is not k=v", kv)
		}
		o.heartbeatFields[k] = v
	}
	return o, nil
}

// stockCurves is what the stock Elkeid agent offers: Elkeid's CI builds it with Go 1.18 (go.mod
// says 1.16), whose crypto/tls default is X25519, P-256, P-384, P-521 with an X25519 key share.
// Go 1.24+ puts the post-quantum hybrid X25519MLKEM768 first, which costs the server more (an
// ML-KEM encapsulation, a 1.1 kB key share) and which only OpenSSL ≥ 3.5 (Node 24) accepts.
var stockCurves = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

var curveNames = map[string]tls.CurveID{
	"x25519mlkem768": tls.X25519MLKEM768, "x25519": tls.X25519,
	"p256": tls.CurveP256, "p384": tls.CurveP384, "p521": tls.CurveP521,
}

func parseCurves(s string) ([]tls.CurveID, error) {
	switch s {
	case "stock":
		return stockCurves, nil
	case "go":
		return nil, nil
	}
	var out []tls.CurveID
	for _, name := range splitList(strings.ToLower(s)) {
		id, ok := curveNames[name]
		if !ok {
			return nil, fmt.Errorf("goagent: -curves: unknown group %q", name)
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("goagent: -curves: empty list")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// run is the agent's transfer daemon: stream, wait, again; too many dial failures in a row end
// the process (systemd restarts the real agent).
func (a *agent) run() int {
	go a.produce()
	failures := 0
	for a.ctx.Err() == nil {
		connected, err := a.runTransfer(a.ctx)
		if a.ctx.Err() != nil {
			break
		}
		if !connected {
			failures++
			a.emit("dial_error", map[string]any{"err": err.Error(), "failures": failures})
			if a.opts.maxDialFailures > 0 && failures > a.opts.maxDialFailures {
				return 1
			}
		} else {
			failures = 0
			a.emit("stream_end", statusOf(err))
		}
		select {
		case <-a.ctx.Done():
		case <-time.After(a.opts.reconnectWait):
		}
	}
	a.conn.close()
	return 0
}

// produce feeds the buffer: a heartbeat at start and every interval, plugin records at the rate.
func (a *agent) produce() {
	hb := time.NewTicker(a.opts.heartbeatInterval)
	defer hb.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	a.buf.add(1000, a.heartbeatFields())
	seq, owed := 0, 0.0
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-hb.C:
			a.buf.add(1000, a.heartbeatFields())
		case <-tick.C:
			owed += float64(a.opts.recordsPerSecond) / 10
			for ; owed >= 1; owed-- {
				seq++
				a.buf.add(int32(a.opts.recordType), map[string]string{"seq": strconv.Itoa(seq), "agent": a.opts.agentID})
			}
		}
	}
}

func (a *agent) heartbeatFields() map[string]string {
	f := map[string]string{
		"kernel_version": "6.1.0", "arch": "x86_64", "platform": "debian", "platform_family": "debian",
		"platform_version": "12", "state": "running", "state_detail": "[]", "idc": "default",
		"region": "default", "net_mode": "private", "cpu": "0.01000000", "rss": "31457280",
		"pid": strconv.Itoa(os.Getpid()), "nproc": "2", "gateway": "10.0.0.1", "dns": "10.0.0.53",
		"host_serial": "", "host_id": "", "boot_time": "1700000000", "start_time": strconv.FormatInt(time.Now().Unix(), 10),
	}
	for k, v := range a.opts.heartbeatFields {
		f[k] = v
	}
	return f
}

func (a *agent) header() *PackagedData {
	return &PackagedData{
		AgentID: a.opts.agentID, IntranetIPv4: a.opts.intranetIPv4, Hostname: a.opts.hostname,
		Version: a.opts.version, Product: a.opts.product,
	}
}

func (a *agent) setPlugins(items []ConfigItem) {
	a.pluginsMu.Lock()
	defer a.pluginsMu.Unlock()
	a.plugins = map[string]bool{}
	for _, c := range items {
		if c.Name != a.opts.product {
			a.plugins[c.Name] = true
		}
	}
}

func (a *agent) hasPlugin(name string) bool {
	a.pluginsMu.Lock()
	defer a.pluginsMu.Unlock()
	return a.plugins[name]
}

// emit prints one event line: {"ev": name, "t": unix ms, ...fields}.
func (a *agent) emit(ev string, fields map[string]any) { emitEvent(ev, fields) }

var stdoutMu sync.Mutex

// emitEvent prints one JSON line {"ev": name, "t": unix ms, ...fields} on stdout.
func emitEvent(ev string, fields map[string]any) {
	line := map[string]any{"ev": ev, "t": time.Now().UnixMilli()}
	for k, v := range fields {
		line[k] = v
	}
	b, _ := json.Marshal(line)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}
