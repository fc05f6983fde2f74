package push

import (
	"context"
	"sync"

	"github.com/moby/moby/client"
)

// engineConn is the pusher's connection to the Docker engine (DOCKER_HOST),
// opened when an image is first read.
type engineConn struct {
	engMu sync.Mutex
	eng   engineAPI
	close func() error
}

// engine returns the connection, opening it (and pinging the engine) the
// first time.
func (c *engineConn) engine(ctx context.Context) (engineAPI, error) {
	c.engMu.Lock()
	defer c.engMu.Unlock()
	if c.eng != nil {
		return c.eng, nil
	}
	cl, err := client.New(client.FromEnv)
	if err != nil {
		return nil, engineErr("connecting to the Docker engine", err)
	}
	if _, err := cl.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cl.Close()
		return nil, engineErr("connecting to the Docker engine", err)
	}
	c.eng, c.close = cl, cl.Close
	return cl, nil
}

// closeEngine releases the engine client, if one was opened.
func (c *engineConn) closeEngine() error {
	c.engMu.Lock()
	defer c.engMu.Unlock()
	if c.close != nil {
		return c.close()
	}
	return nil
}
