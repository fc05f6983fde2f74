package engineimage

import (
	"context"
	"sync"

	"github.com/moby/moby/client"
)

// Conn is a connection to the Docker engine (DOCKER_HOST), opened when it
// is first asked for (an image is first read). The zero Conn is ready.
type Conn struct {
	engMu sync.Mutex
	eng   Engine
	close func() error
}

// With is a Conn that hands out e (tests count the engine's calls through
// it); Close does not close e.
func With(e Engine) *Conn { return &Conn{eng: e} }

// Engine returns the connection, opening it (and pinging the engine) the
// first time.
func (c *Conn) Engine(ctx context.Context) (Engine, error) {
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

// Close releases the engine client, if one was opened.
func (c *Conn) Close() error {
	c.engMu.Lock()
	defer c.engMu.Unlock()
	if c.close != nil {
		return c.close()
	}
	return nil
}
