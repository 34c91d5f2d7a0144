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
	"net/http"
	"os"
	"os/signal"
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
	flag.Parse()

	key := os.Getenv("LITELLM_MASTER_KEY")
	if key == "" {
		return errors.New("LITELLM_MASTER_KEY is required")
	}
	if *version != litellmtest.Version1747 && *version != litellmtest.Version181 &&
		!strings.HasPrefix(*version, litellmtest.Version181+".") {
		return fmt.Errorf("unsupported -version %q", *version)
	}

	proxy := litellmtest.New(litellmtest.Options{MasterKey: key, Version: *version, WriteDelay: *writeDelay})
	srv := &http.Server{Addr: *addr, Handler: logRequests(proxy), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("litellm-double listening", "addr", *addr, "version", *version, "write_delay", *writeDelay)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
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
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		slog.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	})
}
