// Package kapitest runs a real etcd and kube-apiserver on loopback for tests.
//
// There is no controller-manager, scheduler or kubelet: objects are stored, validated, admitted and
// authorized exactly as on a cluster, but nothing reconciles them. Tests simulate the controllers they
// need (MarkRolledOut writes the status a workload controller would write; CreateNamespace creates the
// objects the namespace controllers would create).
//
// Typical use, one server per test package:
//
//	var srv *kapitest.Server
//
//	func TestMain(m *testing.M) {
//		srv = kapitest.MustStart(m)
//		code := m.Run()
//		srv.Stop()
//		os.Exit(code)
//	}
//
// The binaries come from $KAPI_BIN (a directory holding kube-apiserver and etcd) or, when that is
// unset, from hack/kapi/build.sh in the module root, which builds them once and caches them.
package kapitest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	// URL is the API server's https URL on 127.0.0.1.
	URL string
	// Config authenticates as a member of system:masters (bypasses RBAC). Copy it before changing it.
	Config *rest.Config
	// Dir holds the certificates, keys, token file, etcd data and the log files of both processes.
	Dir string
	// BinDir is the directory the kube-apiserver and etcd binaries were taken from.
	BinDir string
	// CAData is the PEM bundle that verifies the API server's serving certificate.
	CAData []byte

	etcd, apiserver *process
	findTook        time.Duration // locating (or building) the binaries
	etcdReady       time.Duration // from etcd start to /health ok
	apiReady        time.Duration // from kube-apiserver start to /readyz ok

	clientsOnce sync.Once
	clientset   kubernetes.Interface
	dynamic     dynamic.Interface
	mapperMu    sync.Mutex
	mapper      *restmapper.DeferredDiscoveryRESTMapper
	clientsErr  error

	stopOnce sync.Once
}

const (
	startTimeout = 90 * time.Second
	adminUser    = "kapitest-admin"
	saIssuer     = "https://kubernetes.default.svc"
	// startAttempts covers the short window between picking a free port and the process binding it,
	// in which another process (e.g. a parallel test package) may take the port.
	startAttempts = 3
)

// MustStart is Start for TestMain: it exits the test binary with status 1 and a clear message when the
// server cannot be started, since no test of the package can run without it.
func MustStart(m *testing.M) *Server {
	_ = m // ties the call to TestMain, where os.Exit is the right way to give up
	s, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kapitest: cannot start etcd + kube-apiserver: %v\n"+
			"kapitest: set KAPI_BIN to a directory holding kube-apiserver and etcd, or run hack/kapi/build.sh\n", err)
		os.Exit(1)
	}
	return s
}

// Start finds the binaries and starts etcd and kube-apiserver on free loopback ports. It returns once
// /readyz answers ok, i.e. once the RBAC bootstrap roles and all other post-start hooks are done.
func Start() (*Server, error) {
	t0 := time.Now()
	binDir, err := findBinaries()
	if err != nil {
		return nil, err
	}
	found := time.Since(t0)
	var lastErr error
	for range startAttempts {
		s, err := startOnce(binDir)
		if err == nil {
			s.findTook = found
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	return nil, lastErr
}

var errPortInUse = errors.New("port already in use")

func startOnce(binDir string) (_ *Server, err error) {
	dir, err := os.MkdirTemp("", "kapitest-")
	if err != nil {
		return nil, fmt.Errorf("creating temp dir: %w", err)
	}
	s := &Server{Dir: dir, BinDir: binDir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]

	token, err := writeCredentials(dir)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	t0 := time.Now()
	s.etcd, err = startProcess(filepath.Join(binDir, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name", "kapitest",
		"--data-dir", filepath.Join(dir, "etcd-data"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "kapitest="+peerURL,
		"--unsafe-no-fsync", // test data is thrown away; fsync only costs time
		"--log-level", "warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.etcd, http.DefaultClient, etcdURL+"/health", "", func(body string) bool {
		return strings.Contains(body, `"health":"true"`)
	}); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w", err)
	}
	s.etcdReady = time.Since(t0)

	certDir := filepath.Join(dir, "certs")
	s.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	t1 := time.Now()
	s.apiserver, err = startProcess(filepath.Join(binDir, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"),
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		// 1.37 refuses a loopback advertise address while the endpoint reconciler runs; the
		// `kubernetes` Service having no endpoints does not matter to clients outside the cluster.
		"--advertise-address", "127.0.0.1",
		"--endpoint-reconciler-type", "none",
		"--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", certDir,
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "RBAC",
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		// These make the TokenRequest API work, so tests can act as a real ServiceAccount.
		"--service-account-issuer", saIssuer,
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		// The admission chain is left at its defaults (ServiceAccount, NamespaceLifecycle, ...), as on a
		// cluster; CreateNamespace creates the `default` ServiceAccount that the plugin expects.
	)
	if err != nil {
		return nil, err
	}

	// The serving certificate is written by the apiserver itself early during start-up; until then
	// there is nothing to verify the connection against.
	ca, err := waitFile(ctx, s.apiserver, filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver did not write its serving certificate: %w", err)
	}
	s.CAData = ca
	s.Config = &rest.Config{
		Host:            s.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		// Tests create objects in bursts; client-side throttling would only slow them down.
		QPS:   1000,
		Burst: 2000,
	}
	httpClient, err := rest.HTTPClientFor(rest.AnonymousClientConfig(s.Config))
	if err != nil {
		return nil, fmt.Errorf("building HTTP client: %w", err)
	}
	// Anonymous /readyz depends on bootstrap RBAC roles that are still being created, so ask as admin.
	if err := waitHTTP(ctx, s.apiserver, httpClient, s.URL+"/readyz", token, func(body string) bool {
		return body == "ok"
	}); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	s.apiReady = time.Since(t1)
	return s, nil
}

// Stop kills both processes and removes Dir. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// SIGKILL: a graceful kube-apiserver shutdown takes seconds and there is nothing to keep.
		s.apiserver.kill()
		s.etcd.kill()
		if s.Dir != "" {
			_ = os.RemoveAll(s.Dir)
		}
	})
}

// Clientset returns an admin clientset.
func (s *Server) Clientset() kubernetes.Interface {
	s.initClients()
	return s.clientset
}

// Dynamic returns an admin dynamic client.
func (s *Server) Dynamic() dynamic.Interface {
	s.initClients()
	return s.dynamic
}

func (s *Server) initClients() {
	s.clientsOnce.Do(func() {
		cs, err := kubernetes.NewForConfig(rest.CopyConfig(s.Config))
		if err != nil {
			s.clientsErr = err
			return
		}
		dyn, err := dynamic.NewForConfig(rest.CopyConfig(s.Config))
		if err != nil {
			s.clientsErr = err
			return
		}
		s.clientset, s.dynamic = cs, dyn
	})
	if s.clientsErr != nil {
		// Only a malformed Config gets here, and Start built that Config itself.
		panic(fmt.Sprintf("kapitest: building clients: %v", s.clientsErr))
	}
}

// findBinaries returns $KAPI_BIN, or the directory hack/kapi/build.sh prints on its last line.
func findBinaries() (string, error) {
	if dir := os.Getenv("KAPI_BIN"); dir != "" {
		for _, name := range []string{"kube-apiserver", "etcd"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return "", fmt.Errorf("KAPI_BIN=%s: %w", dir, err)
			}
		}
		return dir, nil
	}
	builtMu.Lock()
	defer builtMu.Unlock()
	if builtDir != "" {
		return builtDir, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "kapi", "build.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("KAPI_BIN is unset and the build script is missing: %w", err)
	}

	// Test packages run in parallel; on a cold cache they would otherwise build the same ~100 MiB
	// binaries into the same place at the same time. The script skips the build when it is done.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "litemaas-gitops-kapi-build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stdout = &stdout
	// A cold build takes minutes; show its progress instead of appearing to hang.
	cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w\n%s", script, err, Tail(stderr.Bytes(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no binary directory", script)
	}
	builtDir = dir
	return dir, nil
}

// builtDir remembers what the build script printed, so that further servers in the same test binary
// do not run it again.
var (
	builtMu  sync.Mutex
	builtDir string
)

// moduleRoot walks up from the working directory (the package directory under `go test`) to the
// directory holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or above; set KAPI_BIN", wd)
		}
		dir = parent
	}
}

// FreePorts reserves n distinct loopback ports by holding all listeners open until every port is
// known. Another process may still take one before its server binds it: callers retry on that.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeCredentials writes the static admin token file and the ServiceAccount signing key pair, and
// returns the admin token.
func writeCredentials(dir string) (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating admin token: %w", err)
	}
	token := hex.EncodeToString(raw)
	// Format: token,user,uid,"group1,group2"
	tokens := fmt.Sprintf("%s,%s,%s-uid,\"system:masters\"\n", token, adminUser, adminUser)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return "", fmt.Errorf("writing token file: %w", err)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generating service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("encoding service account public key: %w", err)
	}
	files := map[string]*pem.Block{
		"sa.key": {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)},
		"sa.pub": {Type: "PUBLIC KEY", Bytes: pub},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return "", fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return token, nil
}

// process is a started binary whose output goes to a log file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

func startProcess(bin, logPath string, args ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = childEnv()
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{name: filepath.Base(bin), logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// childEnv drops ETCD_* variables: etcd reads every flag from the environment too, and a stray
// setting from the developer's shell would change the test server.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *process) kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// exitError describes a process that died during start-up, with the end of its log.
func (p *process) exitError() error {
	logTail := Tail(readFile(p.logPath), 30)
	err := fmt.Errorf("%s exited during start-up (%v); last lines of its log:\n%s", p.name, p.waitErr, logTail)
	if bytes.Contains(logTail, []byte("address already in use")) {
		return errors.Join(errPortInUse, err)
	}
	return err
}

func (p *process) timeoutError(ctx context.Context, last error) error {
	return fmt.Errorf("%w (last probe error: %v); last lines of the %s log:\n%s",
		ctx.Err(), last, p.name, Tail(readFile(p.logPath), 30))
}

// waitHTTP polls url until ok(body) holds. There is nothing to watch before the server is up, so this
// is a short poll; it gives up early when the process dies.
func waitHTTP(ctx context.Context, p *process, client *http.Client, url, token string, ok func(string) bool) error {
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && ok(strings.TrimSpace(string(body))) {
				return nil
			}
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, Tail(body, 5))
		}
		last = err
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			return p.timeoutError(ctx, last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// waitFile waits until path exists and holds a complete PEM certificate.
func waitFile(ctx context.Context, p *process, path string) ([]byte, error) {
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte("-----END CERTIFICATE-----")) {
			return b, nil
		}
		select {
		case <-p.exited:
			return nil, p.exitError()
		case <-ctx.Done():
			return nil, p.timeoutError(ctx, fmt.Errorf("%s not written", path))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// Tail returns the last n lines of b (a process's log, for an error message).
func Tail(b []byte, n int) []byte {
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return bytes.Join(lines, []byte("\n"))
}
