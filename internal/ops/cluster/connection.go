package cluster

import (
	"flag"
	"io"
	"log/slog"
	"os"
)

// Connection is how a command reaches the cluster: the flags every cluster command takes.
type Connection struct {
	// Context is the kubeconfig context; empty: the current one.
	Context string
	// Verbose logs debug details to Log.
	Verbose bool
	Log     io.Writer
}

// Bind binds --context and -v to c.
func (c *Connection) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Context, "context", "", "kubeconfig context (default: the current one)")
	fs.BoolVar(&c.Verbose, "v", false, "log debug details to stderr")
}

// Connect connects, logging to Log (stderr when nil) at debug level with Verbose.
func (c *Connection) Connect() (*Cluster, error) {
	level := slog.LevelInfo
	if c.Verbose {
		level = slog.LevelDebug
	}
	w := c.Log
	if w == nil {
		w = os.Stderr
	}
	return Load(c.Context, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}
