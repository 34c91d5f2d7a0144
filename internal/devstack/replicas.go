package devstack

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

// startModelServer serves every served name of the mounted catalog (litellm_params.model after its
// provider prefix) on one local OpenAI-compatible server, standing for the vLLM predictors the
// catalog's in-cluster api_base addresses name.
func (s *Stack) startModelServer() error {
	c, err := catalog.Load(s.CatalogPath())
	if err != nil {
		return fmt.Errorf("reading the mounted catalog for the model server: %w", err)
	}
	var names []string
	for _, m := range c.Models {
		name := m.Model
		if _, rest, ok := strings.Cut(name, "/"); ok {
			name = rest
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the model server: %w", err)
	}
	s.VLLM = litellmtest.NewVLLM(names...)
	s.vllmAddr = ln.Addr().String()
	s.vllmServer = &http.Server{Handler: s.VLLM, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.vllmServer.Serve(ln) }()
	return nil
}

// startLiteLLM starts the double's replicas sharing one database, the first on addr (the address the
// Job's LITELLM_URL points at), every one calling the local model server for any api_base.
func (s *Stack) startLiteLLM(opts litellmtest.Options, replicas int, addr string) error {
	if s.vllmAddr != "" {
		opts.Upstream = litellmtest.Resolver(s.vllmAddr)
	}
	s.Replicas = nil
	for i, p := range litellmtest.NewReplicas(opts, max(replicas, 1)) {
		srv := litellmtest.NewServer(p)
		a := "127.0.0.1:0"
		if i == 0 {
			a = addr
		}
		if err := srv.Start(a); err != nil {
			return fmt.Errorf("starting LiteLLM double replica %d: %w", i+1, err)
		}
		s.Replicas = append(s.Replicas, srv)
	}
	s.LiteLLM, s.Proxy = s.Replicas[0], s.Replicas[0].Proxy()
	return nil
}

func (s *Stack) stopLiteLLM() error {
	var first error
	for _, r := range s.Replicas {
		if err := r.Stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
