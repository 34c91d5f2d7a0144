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
	if _, err := b.Write(first); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, b); done <- struct{}{} }()
	<-done
}
