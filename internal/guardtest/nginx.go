package guardtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// Guard is a running nginx with the backend guard's configuration.
type Guard struct {
	// URL is http://127.0.0.1:<port>, where the guard listens.
	URL  string
	Conf string // the configuration nginx runs, after the rewrites of Rewrite
}

var (
	listenRE   = regexp.MustCompile(`(?m)^(\s*listen\s+)8080(\s*;)`)
	upstreamRE = regexp.MustCompile(`(?m)^(\s*server\s+)127\.0\.0\.1:8081(\s*;)`)
)

// RenderedConfig returns the guard's nginx.conf exactly as kustomize renders the overlay dir (relative
// to the repository root).
func RenderedConfig(t testing.TB, overlay string) string {
	t.Helper()
	objs, err := manifests.Render(filepath.Join(repoRoot(t), overlay))
	if err != nil {
		t.Fatalf("rendering %s: %v", overlay, err)
	}
	conf, err := manifests.GuardConfig(objs)
	if err != nil {
		t.Fatalf("%s: %v", overlay, err)
	}
	return conf
}

// Rewrite changes only what an unprivileged nginx on a test machine needs, and nothing of what the guard
// does to requests: the listen port 8080 becomes listen (host:port on loopback), the upstream
// 127.0.0.1:8081 becomes upstream (the stand-in), and the writable paths under /tmp (the pod's
// emptyDir) move to dir. It fails when one of them is not found, so that a changed configuration is
// not silently tested as something else.
func Rewrite(conf, listen, upstream, dir string) (string, error) {
	if !listenRE.MatchString(conf) {
		return "", fmt.Errorf("nginx.conf: no `listen 8080;` to rewrite")
	}
	if !upstreamRE.MatchString(conf) {
		return "", fmt.Errorf("nginx.conf: no `server 127.0.0.1:8081;` to rewrite")
	}
	if !strings.Contains(conf, " /tmp/") {
		return "", fmt.Errorf("nginx.conf: no /tmp paths to rewrite")
	}
	conf = listenRE.ReplaceAllString(conf, "${1}"+listen+"${2}")
	conf = upstreamRE.ReplaceAllString(conf, "${1}"+upstream+"${2}")
	return strings.ReplaceAll(conf, " /tmp/", " "+strings.TrimSuffix(dir, "/")+"/"), nil
}

// nginxBinary finds Debian's nginx (package nginx; /usr/sbin is not on every user's PATH).
func nginxBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx not found: install the Debian package nginx (.ci/run does)")
	return ""
}

// Start runs nginx with conf (the rendered configuration) in front of upstream (host:port), and stops
// it when the test ends. nginx runs as the test's user, in the foreground, as in the pod: `-e
// /dev/stderr -g "daemon off;"`.
func Start(t testing.TB, conf, upstream string) *Guard {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	// As root nginx runs its worker as nobody, which must reach the temporary paths.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := Rewrite(conf, listen, upstream, dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", path, "-e", "/dev/stderr", "-g", "daemon off;")
	// SIGQUIT: nginx's graceful stop, in which the master stops its workers (a killed master leaves
	// them running, holding the log pipe open). WaitDelay bounds the wait if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("nginx log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("nginx exited at start:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s after 10s:\n%s", listen, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Guard{URL: "http://" + listen, Conf: c}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// repoRoot is the directory holding go.mod, from the test's working directory up.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
