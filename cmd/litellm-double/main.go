// Command litellm-double serves the in-memory LiteLLM admin API double on a local port, so the job
// can be demonstrated without a real proxy. The master key comes from LITELLM_MASTER_KEY only, so it
// never shows in a process list, and it is never logged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

func main() {
	if err := run(); err != nil {
		slog.Error("litellm-double failed", "error", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", envOr("LITELLM_DOUBLE_ADDR", "127.0.0.1:4000"), "listen address (env LITELLM_DOUBLE_ADDR)")
	version := flag.String("version", envOr("LITELLM_DOUBLE_VERSION", litellmtest.Version1747),
		"LiteLLM version to imitate: "+litellmtest.Version1747+" or "+litellmtest.Version181+" (env LITELLM_DOUBLE_VERSION)")
	writeDelay := flag.Duration("write-delay", 0, "extra delay of model writes, e.g. 20ms")
	replicas := flag.Int("replicas", 1, "LiteLLM replicas sharing one database; the others listen on the next ports")
	poll := flag.Duration("poll", 10*time.Second, "how often a replica polls the database for the others' writes (LiteLLM: 10s in v1.74.7, 30s from v1.79.1)")
	models := flag.String("serve-models", "", "comma-separated served model names: also run an OpenAI-compatible model server for them on -model-addr, and send every api_base there")
	modelAddr := flag.String("model-addr", "127.0.0.1:8000", "listen address of the model server (with -serve-models)")
	flag.Parse()

	key := os.Getenv("LITELLM_MASTER_KEY")
	if key == "" {
		return errors.New("LITELLM_MASTER_KEY is required")
	}
	if *version != litellmtest.Version1747 && *version != litellmtest.Version181 &&
		!strings.HasPrefix(*version, litellmtest.Version181+".") {
		return fmt.Errorf("unsupported -version %q", *version)
	}

	if *replicas < 1 {
		return fmt.Errorf("-replicas %d: want at least 1", *replicas)
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	first, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("-addr %q: the port must be a number: %w", *addr, err)
	}

	opts := litellmtest.Options{MasterKey: key, Version: *version, WriteDelay: *writeDelay}
	var servers []*http.Server
	if *models != "" {
		opts.Upstream = litellmtest.Resolver(*modelAddr)
		servers = append(servers, &http.Server{Addr: *modelAddr, Handler: logRequests("model-server", litellmtest.NewVLLM(strings.Split(*models, ",")...)), ReadHeaderTimeout: 10 * time.Second})
	}
	if *replicas > 1 {
		opts.PollInterval = *poll
	}
	for i, p := range litellmtest.NewReplicas(opts, *replicas) {
		a := net.JoinHostPort(host, strconv.Itoa(first+i))
		servers = append(servers, &http.Server{Addr: a, Handler: logRequests(fmt.Sprintf("replica-%d", i+1), p), ReadHeaderTimeout: 10 * time.Second})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ListenAndServe() }()
		slog.Info("litellm-double listening", "addr", srv.Addr, "version", *version, "write_delay", *writeDelay)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	slog.Info("litellm-double stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// logRequests logs one line per request; headers are left out because they carry the key.
func logRequests(server string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		slog.Info("request", "server", server, "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	})
}
