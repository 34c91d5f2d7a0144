package litellmtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server runs a Proxy on a real listener that can be stopped and started again on the same address
// with the same state, so tests can simulate a proxy that is down (connection refused) and comes
// back, e.g. "down when the job starts, up ten seconds later".
type Server struct {
	proxy *Proxy

	mu   sync.Mutex
	addr string
	srv  *http.Server
	done chan struct{}
}

// NewServer wraps p; nothing listens until Start.
func NewServer(p *Proxy) *Server { return &Server{proxy: p} }

// Proxy returns the served proxy.
func (s *Server) Proxy() *Proxy { return s.proxy }

// Start listens on addr, or on the previous address when addr is empty, or on a free loopback port
// the first time. Starting counts as a proxy restart (see Proxy.Restart).
func (s *Server) Start(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("litellmtest: server already started")
	}
	if addr == "" {
		addr = s.addr
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := listen(addr)
	if err != nil {
		return fmt.Errorf("litellmtest: listen %s: %w", addr, err)
	}
	s.proxy.Restart()
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.proxy, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln)
	}(s.srv, s.done)
	return nil
}

// listen retries briefly: right after Stop the kernel may still hold the port.
func listen(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// Stop closes the listener and every open connection at once, as a crashed pod would; clients then
// get connection refused until the next Start. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.done
	s.srv, s.done = nil, nil
	return err
}

// Addr is the host:port of the last Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the base URL of the last Start, e.g. http://127.0.0.1:4000.
func (s *Server) URL() string { return "http://" + s.Addr() }
