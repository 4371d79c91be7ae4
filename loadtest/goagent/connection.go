package main

// Dialing as the stock agent does (agent/transport/connection/connection.go): mTLS with the
// embedded CA and server name "elkeid.com", a blocking dial that returns the connection error,
// no keepalive configured (grpc-go's client default: none), grpc-go's default reconnect backoff
// (1 s base, ×1.6, jitter 0.2, 120 s cap). A cached connection is reused while Ready or Idle, at
// most 5 times in a row (uploads count too); then it is closed and dialled afresh.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
)

type connector struct {
	addrs       []string
	dialTimeout time.Duration
	options     []grpc.DialOption

	mu      sync.Mutex
	conn    *grpc.ClientConn
	reuses  int
	onEvent func(ev string, fields map[string]any)
}

func newConnector(o *options, onEvent func(string, map[string]any)) (*connector, error) {
	dial, err := dialOptions(o)
	if err != nil {
		return nil, err
	}
	return &connector{addrs: o.addrs, dialTimeout: o.dialTimeout, onEvent: onEvent, options: dial}, nil
}

// dialOptions are the stock agent's: its embedded CA, client certificate and server name, a
// blocking dial that returns the connection error, grpc-go's default backoff.
func dialOptions(o *options) ([]grpc.DialOption, error) {
	ca, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in " + o.caFile)
	}
	pair, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair},
		ServerName:   o.serverName,
		RootCAs:      pool,
		// What the agent offers for the key exchange (-curves): the stock agent's by default.
		CurvePreferences: o.curves,
	})
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithBlock(),
		grpc.WithReturnConnectionError(),
		grpc.FailOnNonTempDialError(true),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: 20 * time.Second}),
	}, nil
}

// get returns the cached connection or dials each address in order.
func (c *connector) get(ctx context.Context) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		switch c.conn.GetState() {
		case connectivity.Ready, connectivity.Idle:
			c.reuses++
			if c.reuses <= 5 {
				return c.conn, nil
			}
		}
		c.conn.Close()
		c.conn = nil
	}
	var lastErr error
	for _, addr := range c.addrs {
		dialCtx, cancel := context.WithTimeout(ctx, c.dialTimeout)
		//nolint:staticcheck // DialContext with WithBlock is what the stock agent calls.
		conn, err := grpc.DialContext(dialCtx, addr, c.options...)
		cancel()
		if err == nil {
			c.conn, c.reuses = conn, 0
			c.onEvent("connected", map[string]any{"addr": addr})
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (c *connector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
