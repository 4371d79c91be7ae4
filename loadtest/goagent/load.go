package main

// `goagent load`: many agents in one process for the benchmarks (npm run bench:ingest). Each
// agent has its own connection (TLS with the client certificate, HTTP/2, one Transfer stream),
// dialled with the options the single agent uses (connection.go), and speaks the same wire: the
// snappy compressor of snappy.go (or none, for servers without it), PackagedData of wire.go.
//
// Modes:
//   paced      every agent sends one PackagedData of -records records every -interval (what a
//              real agent does; 100 agents × 20 records every 100 ms = 20,000 records/s), open
//              loop: a send that falls behind its schedule catches up and is reported as behind
//   saturated  every agent sends as fast as HTTP/2 flow control lets it (closed loop)
//   idle       every agent sends its first message (header + heartbeat) and then holds the stream
//
// Every data record's body (an Item) carries the field `sent_us` = "<16 digits CLOCK_MONOTONIC
// µs at the send>:<10 digits message seq of the agent>:<4 digits record index>" (the format of
// loadtest/bench/stamp.ts), so a Kafka consumer on the same machine can compute send→Kafka
// latency and count every record by (AgentID, seq, index). The first message of each agent
// holds one heartbeat (1000) without a stamp.
//
// Output: JSON lines on stdout: `load_ready` once every agent has dialled (connected, failed,
// message sizes), then `load_done` after the load was stopped (stdin closed, SIGTERM/SIGINT or
// -duration): every stream is half-closed, the server's status awaited (-stop-grace), and what
// was sent is reported (records_sent counts the heartbeats too).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

type loadOptions struct {
	options
	mode                  string
	agents, records       int
	recordBytes, dialConc int
	interval, stopGrace   time.Duration
	idPrefix, compression string
	variants, indexBase   int
}

const loadUsage = `usage: goagent load -addr HOST:PORT -ca CA.pem -cert CERT.pem -key KEY.pem [options]

Runs many Elkeid-like agents in this process, each on its own mTLS connection and Transfer
stream (modes: paced, saturated, idle). Prints JSON lines: load_ready, then load_done when
stdin closes, on SIGTERM/SIGINT, or after -duration.

Options:`

func parseLoadFlags(args []string) (*loadOptions, error) {
	fs := flag.NewFlagSet("goagent load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), loadUsage)
		fs.PrintDefaults()
	}
	o := &loadOptions{}
	addrs := fs.String("addr", "", "gateway host:port (required)")
	fs.StringVar(&o.caFile, "ca", "", "CA certificate PEM the agents embed (required)")
	fs.StringVar(&o.certFile, "cert", "", "client certificate PEM (required)")
	fs.StringVar(&o.keyFile, "key", "", "client key PEM (required)")
	fs.StringVar(&o.serverName, "server-name", "elkeid.com", "name the server certificate must carry")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 15*time.Second, "one dial's timeout")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = when stdin closes or on SIGTERM)")
	fs.StringVar(&o.mode, "mode", "paced", "paced | saturated | idle")
	fs.IntVar(&o.agents, "agents", 100, "agents (connections)")
	fs.IntVar(&o.records, "records", 20, "records per PackagedData")
	fs.IntVar(&o.recordBytes, "record-bytes", 600, "approximate size of a record body (encoded Item)")
	fs.DurationVar(&o.interval, "interval", 100*time.Millisecond, "paced: one PackagedData per agent per interval")
	fs.DurationVar(&o.stopGrace, "stop-grace", 60*time.Second, "after the half-close, how long to wait for the server's status")
	fs.IntVar(&o.dialConc, "dial-concurrency", 32, "agents dialling at once")
	fs.StringVar(&o.idPrefix, "id-prefix", "", "AgentID prefix (default: random); AgentID = prefix-index")
	fs.IntVar(&o.indexBase, "index-base", 0, "index of the first agent (hostnames, IPs, AgentIDs)")
	fs.StringVar(&o.compression, "compression", "snappy", "snappy (the stock agent's) | none")
	fs.IntVar(&o.variants, "variants", 4, "distinct record-content templates per agent")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *addrs == "" || o.caFile == "" || o.certFile == "" || o.keyFile == "" {
		return nil, errors.New("goagent load: -addr, -ca, -cert and -key are required (-h for help)")
	}
	switch o.mode {
	case "paced", "saturated", "idle":
	default:
		return nil, fmt.Errorf("goagent load: -mode %q: want paced, saturated or idle", o.mode)
	}
	if o.compression != "snappy" && o.compression != "none" {
		return nil, fmt.Errorf("goagent load: -compression %q: want snappy or none", o.compression)
	}
	if o.agents < 1 || o.records < 1 || o.records >= maxStampIndex || o.interval <= 0 || o.variants < 1 {
		return nil, errors.New("goagent load: -agents ≥ 1, 1 ≤ -records < 10000, -interval > 0, -variants ≥ 1")
	}
	o.addrs = splitList(*addrs)
	if o.idPrefix == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.idPrefix = hex.EncodeToString(b)
	}
	return o, nil
}

// loadAgent is one simulated agent of a load run.
type loadAgent struct {
	id        string
	index     int
	conn      *grpc.ClientConn
	stream    grpc.ClientStream
	templates []stampedMessage
	seq       int
	sent      int // data messages sent
	behind    int // most messages the paced schedule was behind
	status    *int
	err       string
	done      chan struct{} // closed when the stream has ended (status known)
	senderOut chan struct{} // closed when the sender has returned
}

type loadRun struct {
	o       *loadOptions
	dial    []grpc.DialOption
	callOpt []grpc.CallOption
	stop    chan struct{}
	stopped atomic.Bool

	mu     sync.Mutex
	agents []*loadAgent
	errs   map[string]int
}

// runLoad is `goagent load`; it returns the exit code.
func runLoad(args []string) int {
	o, err := parseLoadFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	dial, err := dialOptions(&o.options)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := &loadRun{o: o, dial: dial, stop: make(chan struct{}), errs: map[string]int{}}
	if o.compression == "snappy" {
		r.callOpt = []grpc.CallOption{grpc.UseCompressor("snappy")}
	}
	started := time.Now()
	r.connectAll()
	r.ready(time.Since(started))
	r.waitForStop()
	r.stopped.Store(true)
	close(r.stop)
	emitEvent("load_done", r.finish())
	return 0
}

// connectAll dials every agent (a few at once) and sends each one's first message.
func (r *loadRun) connectAll() {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(r.o.dialConc, r.o.agents); w++ {
		wg.Go(func() {
			for i := range next {
				a, err := r.connect(r.o.indexBase + i)
				r.mu.Lock()
				if err != nil {
					r.errs[errorKey(err)]++
				} else {
					r.agents = append(r.agents, a)
				}
				r.mu.Unlock()
			}
		})
	}
	for i := 0; i < r.o.agents; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (r *loadRun) connect(index int) (*loadAgent, error) {
	a := &loadAgent{
		id: fmt.Sprintf("%s-%06d", r.o.idPrefix, index), index: index,
		done: make(chan struct{}), senderOut: make(chan struct{}),
	}
	for v := 0; v < r.o.variants; v++ {
		a.templates = append(a.templates, newStampedMessage(a.header(), r.o.records, r.o.recordBytes, uint64(index*r.o.variants+v)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.dialTimeout)
	defer cancel()
	var err error
	//nolint:staticcheck // DialContext with WithBlock is what the stock agent calls.
	a.conn, err = grpc.DialContext(ctx, r.o.addrs[index%len(r.o.addrs)], r.dial...)
	if err != nil {
		return nil, err
	}
	a.stream, err = a.conn.NewStream(context.Background(), transferDesc, transferMethod, r.callOpt...)
	if err == nil {
		first := a.header()
		first.Records = []Record{{DataType: 1000, Timestamp: time.Now().Unix(), Body: encodeItem(loadHeartbeat())}}
		err = a.stream.SendMsg(first)
	}
	if err != nil {
		a.conn.Close()
		return nil, err
	}
	go a.receive()
	return a, nil
}

func (a *loadAgent) header() *PackagedData {
	return &PackagedData{
		AgentID:      a.id,
		IntranetIPv4: []string{fmt.Sprintf("10.%d.%d.%d", (a.index>>8)&0xff, a.index&0xff, a.index%250+2), "172.17.0.1"},
		IntranetIPv6: []string{fmt.Sprintf("fe80::%x:5054:ff:fe12:3456", a.index&0xffff)},
		Hostname:     fmt.Sprintf("node-%05d.prod.example.internal", a.index),
		Version:      "1.9.1.4",
		Product:      "elkeid-agent",
	}
}

// receive reads Commands until the stream ends, then records the status (0 when io.EOF).
func (a *loadAgent) receive() {
	defer close(a.done)
	for {
		if err := a.stream.RecvMsg(&Command{}); err != nil {
			code := 0
			if !errors.Is(err, io.EOF) {
				code = int(status.Code(err))
				a.err = err.Error()
			}
			a.status = &code
			return
		}
	}
}

func (r *loadRun) ready(took time.Duration) {
	var raw, body int
	if len(r.agents) > 0 {
		t := r.agents[0].templates[0]
		raw, body = len(t.bytes), t.bodyBytes/r.o.records
	}
	emitEvent("load_ready", map[string]any{
		"mode": r.o.mode, "connected": len(r.agents), "failed": r.o.agents - len(r.agents),
		"errors": r.errs, "connect_ms": took.Milliseconds(), "id_prefix": r.o.idPrefix,
		"raw_bytes_per_message": raw, "body_bytes_per_record": body, "records_per_message": r.o.records,
	})
	start := time.Now()
	for _, a := range r.agents {
		if r.o.mode == "idle" {
			close(a.senderOut)
			continue
		}
		go func() {
			defer close(a.senderOut)
			r.send(a, start)
		}()
	}
}

// send runs one agent's data messages until the load stops or the stream fails.
func (r *loadRun) send(a *loadAgent, start time.Time) {
	// Spread the agents evenly over the whole interval, as independently started agents are
	// (agent i of n starts i/n of an interval late). Bunched starts would make every interval
	// begin with a burst of all agents' messages and measure queueing behind that burst.
	phase := time.Duration(int64(r.o.interval) * int64(a.index) / int64(r.o.agents))
	var tick *time.Ticker
	if r.o.mode == "paced" {
		select {
		case <-r.stop:
			return
		case <-time.After(phase):
		}
		tick = time.NewTicker(r.o.interval)
		defer tick.Stop()
	}
	for {
		due := 1
		if tick != nil {
			// Open loop: the agent owes one message per interval since its start.
			due = int(time.Since(start.Add(phase))/r.o.interval) + 1 - a.sent
			a.behind = max(a.behind, due-1)
		}
		for ; due > 0; due-- {
			if r.stopped.Load() {
				return
			}
			t := &a.templates[a.seq%len(a.templates)]
			if err := a.stream.SendMsg(t.stamp(a.seq)); err != nil {
				a.err = err.Error()
				return
			}
			a.seq++
			a.sent++
		}
		if tick == nil {
			continue
		}
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
	}
}

func (r *loadRun) waitForStop() {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if r.o.duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.o.duration)
		defer cancel()
	}
	go func() {
		// stdin closing (the benchmark driver's way to stop) ends the load too.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	<-ctx.Done()
}

// finish half-closes every stream, waits for the statuses, and reports what was sent.
func (r *loadRun) finish() map[string]any {
	started := time.Now()
	// The senders see r.stop and return; a send blocked on flow control returns once the server
	// reads on. Half-close only after an agent's sender is done (grpc-go: one sender at a time).
	var wg sync.WaitGroup
	for _, a := range r.agents {
		wg.Go(func() {
			select {
			case <-a.senderOut:
				_ = a.stream.CloseSend()
			case <-time.After(r.o.stopGrace):
			}
			select {
			case <-a.done:
			case <-time.After(r.o.stopGrace):
			}
		})
	}
	wg.Wait()
	statuses := map[string]int{}
	errs := map[string]int{}
	var messages, confirmed, unconfirmed, behind int
	for _, a := range r.agents {
		n := 1 + a.sent*r.o.records
		messages += a.sent
		behind = max(behind, a.behind)
		key := "none"
		if a.status != nil {
			key = fmt.Sprint(*a.status)
		}
		statuses[key]++
		if a.status != nil && *a.status == 0 {
			confirmed += n
		} else {
			unconfirmed += n
		}
		if a.err != "" {
			errs[truncate(a.err, 120)]++
		}
		a.conn.Close()
	}
	return map[string]any{
		"agents": len(r.agents), "messages_sent": messages, "records_sent": len(r.agents) + messages*r.o.records,
		"records_confirmed": confirmed, "records_unconfirmed": unconfirmed, "statuses": statuses,
		"errors": errs, "max_behind": behind, "end_ms": time.Since(started).Milliseconds(),
	}
}

func errorKey(err error) string { return truncate(err.Error(), 120) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
