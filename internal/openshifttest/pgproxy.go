package openshifttest

import (
	"crypto/tls"
	"encoding/binary"

	"io"
	"net"
	"sync"
	"sync/atomic"
)

// The PostgreSQL protocol's request codes before a StartupMessage (protocol.html, "SSL Session
// Encryption" and "GSSAPI Session Encryption").
const (
	sslRequestCode    = 80877103
	gssencRequestCode = 80877104
)

// tlsFront plays the TLS half of a CloudNativePG instance: PostgreSQL speaking TLS with the Cluster's
// server certificate (signed by <cluster>-ca). It answers a client's SSLRequest with 'S', terminates
// TLS with cert and relays the decrypted stream to backend, a real PostgreSQL without TLS; a client
// that asks for no TLS is relayed as is (CloudNativePG's pg_hba then refuses it only for hostssl
// rules, which this front does not judge). GSSAPI encryption is declined ('N'), as by a server without
// it.
type tlsFront struct {
	ln      net.Listener
	backend string
	cert    tls.Certificate
	wg      sync.WaitGroup
	conns   atomic.Int64 // sessions relayed to the backend
	plain   atomic.Int64 // of which without TLS
}

func startTLSFront(backend string, cert tls.Certificate) (*tlsFront, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &tlsFront{ln: ln, backend: backend, cert: cert}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	return f, nil
}

// Addr is host:port of the front.
func (f *tlsFront) Addr() string { return f.ln.Addr().String() }

func (f *tlsFront) Close() {
	_ = f.ln.Close()
}

func (f *tlsFront) serve(c net.Conn) {
	defer c.Close()
	var client net.Conn = c
	var first []byte
	encrypted := false
	for {
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(client, hdr); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		code := binary.BigEndian.Uint32(hdr[4:])
		if n == 8 && code == sslRequestCode {
			if _, err := client.Write([]byte{'S'}); err != nil {
				return
			}
			tc := tls.Server(client, &tls.Config{Certificates: []tls.Certificate{f.cert}, MinVersion: tls.VersionTLS12})
			if err := tc.Handshake(); err != nil {
				return
			}
			client = tc
			encrypted = true
			continue
		}
		if n == 8 && code == gssencRequestCode {
			if _, err := client.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		if n < 8 || n > 1<<20 {
			return
		}
		rest := make([]byte, n-8)
		if _, err := io.ReadFull(client, rest); err != nil {
			return
		}
		first = append(hdr, rest...)
		break
	}
	b, err := net.Dial("tcp", f.backend)
	if err != nil {
		return
	}
	defer b.Close()
	f.conns.Add(1)
	if !encrypted {
		f.plain.Add(1)
	}
	if _, err := b.Write(first); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, b); done <- struct{}{} }()
	<-done
}

// TLSServer is a Cluster's instances as CNPG serves them, for a harness that runs no controller
// (internal/devstack): the PostgreSQL at backend behind TLS, with a server certificate for the Cluster's
// Services (and 127.0.0.1) signed by a CA of its own, which CloudNativePG would keep in Secret
// <name>-ca (keys ca.crt and ca.key).
type TLSServer struct {
	// CACert and CAKey are the PEM data of Secret <name>-ca.
	CACert, CAKey []byte
	front         *tlsFront
}

// StartTLSServer starts the TLS front of Cluster ns/name in front of backend (host:port).
func StartTLSServer(ns, name, backend string) (*TLSServer, error) {
	caPEM, keyPEM, err := newCA(ns, name)
	if err != nil {
		return nil, err
	}
	ca, caKey, err := parseCA(caPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, certKeyPEM, err := newServerCert(ns, name, ca, caKey)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, certKeyPEM)
	if err != nil {
		return nil, err
	}
	f, err := startTLSFront(backend, cert)
	if err != nil {
		return nil, err
	}
	return &TLSServer{CACert: caPEM, CAKey: keyPEM, front: f}, nil
}

// Addr is host:port of the server.
func (s *TLSServer) Addr() string { return s.front.Addr() }

// Close stops accepting sessions.
func (s *TLSServer) Close() { s.front.Close() }

// Sessions returns how many sessions were relayed, and how many of them without TLS.
func (s *TLSServer) Sessions() (all, plain int64) { return s.front.conns.Load(), s.front.plain.Load() }
