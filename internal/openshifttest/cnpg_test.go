package openshifttest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

func basicAuth(ns, name, user, password string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": user, "password": password}}
}

const clusterYAML = `
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: db
spec:
  instances: 3
  storage:
    size: 1Gi
  bootstrap:
    initdb:
      database: %[1]s_app
      owner: %[1]s_owner
      secret:
        name: db-owner
  managed:
    roles:
      - name: %[1]s_reader
        ensure: present
        login: true
        inRoles: [pg_read_all_data]
        connectionLimit: 4
        passwordSecret:
          name: db-reader
      - name: %[1]s_member
        ensure: present
        login: true
        inherit: false
        inRoles: [%[1]s_owner]
        passwordSecret:
          name: db-member
      - name: %[1]s_nosecret
        ensure: present
        login: true
        passwordSecret:
          name: db-missing
      - name: %[1]s_mismatch
        ensure: present
        login: true
        passwordSecret:
          name: db-reader
`

func TestCNPG(t *testing.T) {
	ctx := context.Background()
	crds, err := manifests.UpstreamCRDs()
	require.NoError(t, err)
	var cnpg []*unstructured.Unstructured
	for _, c := range crds {
		if strings.HasSuffix(c.GetName(), ".postgresql.cnpg.io") {
			cnpg = append(cnpg, c)
		}
	}
	kube.Apply(t, cnpg...)
	var mu sync.Mutex
	var created []string
	c := &openshifttest.CNPG{Client: kube.Clientset(), Dynamic: kube.Dynamic(), AdminURL: pg.URL, Log: t.Logf,
		OnDatabase: func(_, db string) {
			mu.Lock()
			defer mu.Unlock()
			created = append(created, db)
		}}
	start(t, c.Start)
	t.Cleanup(func() {
		for _, db := range created {
			_ = exec(ctx, pg.URL("postgres"), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
		}
	})
	cs, dyn := kube.Clientset(), kube.Dynamic()
	ns := kube.CreateNamespace(t, "cnpg")
	// Unique role names: roles are global to the PostgreSQL server the tests share.
	p := "r" + strings.ToLower(randSuffix())
	for _, s := range []*corev1.Secret{
		basicAuth(ns, "db-owner", p+"_owner", "owner-pw"),
		basicAuth(ns, "db-reader", p+"_reader", "reader-pw"),
		basicAuth(ns, "db-member", p+"_member", "member-pw"),
	} {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	cl := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal(fmt.Appendf(nil, clusterYAML, p), &cl.Object))
	cl.SetNamespace(ns)
	_, err = dyn.Resource(openshifttest.ClusterGVR).Namespace(ns).Create(ctx, cl, metav1.CreateOptions{})
	require.NoError(t, err)

	got := eventually(t, "the Cluster ready", getObj(dyn, openshifttest.ClusterGVR, ns, "db"), func(u *unstructured.Unstructured) bool {
		return cond(u, "Ready") == "True"
	})
	t.Run("status as Argo CD's health check and the job's wait read it", func(t *testing.T) {
		assert.Equal(t, openshifttest.PhaseHealthy, str(got, "status", "phase"))
		ready, _, _ := unstructured.NestedInt64(got.Object, "status", "readyInstances")
		assert.Equal(t, int64(3), ready)
		assert.Equal(t, "db-rw", str(got, "status", "writeService"))
		reconciled, _, _ := unstructured.NestedStringSlice(got.Object, "status", "managedRolesStatus", "byStatus", "reconciled")
		assert.ElementsMatch(t, []string{p + "_reader", p + "_member"}, reconciled)
		cannot, _, _ := unstructured.NestedMap(got.Object, "status", "managedRolesStatus", "cannotReconcile")
		assert.Contains(t, cannot, p+"_nosecret")
		assert.Contains(t, cannot, p+"_mismatch", "a Secret whose username is another role's")
	})
	t.Run("Services and Secrets", func(t *testing.T) {
		for _, name := range []string{"db-rw", "db-ro", "db-r"} {
			svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err, name)
			assert.Equal(t, int32(5432), svc.Spec.Ports[0].Port)
			assert.Equal(t, "db", svc.Spec.Selector["cnpg.io/cluster"])
			assert.Equal(t, "Cluster", svc.OwnerReferences[0].Kind)
		}
		ca, err := cs.CoreV1().Secrets(ns).Get(ctx, "db-ca", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Contains(t, string(ca.Data["ca.crt"]), "BEGIN CERTIFICATE")
		server, err := cs.CoreV1().Secrets(ns).Get(ctx, "db-server", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, corev1.SecretTypeTLS, server.Type)
		_, err = cs.CoreV1().Secrets(ns).Get(ctx, "db-app", metav1.GetOptions{})
		assert.Error(t, err, "no db-app: bootstrap.initdb.secret names the owner's credentials")
	})
	t.Run("roles on the real PostgreSQL, over TLS verified with <cluster>-ca", func(t *testing.T) {
		ca, err := cs.CoreV1().Secrets(ns).Get(ctx, "db-ca", metav1.GetOptions{})
		require.NoError(t, err)
		caFile := filepath.Join(t.TempDir(), "ca.crt")
		require.NoError(t, os.WriteFile(caFile, ca.Data["ca.crt"], 0o600))
		addr := c.Addr(ns, "db")
		require.NotEmpty(t, addr)
		as := func(user, pw, db string) string {
			return fmt.Sprintf("postgresql://%s:%s@%s/%s?sslmode=verify-full&sslrootcert=%s", user, url.QueryEscape(pw), addr, db, caFile)
		}
		conn, err := pgx.Connect(ctx, as(p+"_reader", "reader-pw", p+"_app"))
		require.NoError(t, err, "the reader logs in with its Secret's password")
		_, isTLS := conn.PgConn().Conn().(*tls.Conn)
		conn.Close(ctx)
		assert.True(t, isTLS, "the client's connection is TLS")
		bad, err := os.CreateTemp(t.TempDir(), "other-ca")
		require.NoError(t, err)
		_, _ = bad.Write(otherCA(t))
		_, err = pgx.Connect(ctx, strings.Replace(as(p+"_reader", "reader-pw", p+"_app"), caFile, bad.Name(), 1))
		assert.Error(t, err, "verify-full refuses a server certificate of another CA")

		admin, err := pgx.Connect(ctx, pg.URL("postgres"))
		require.NoError(t, err)
		defer admin.Close(ctx)
		var limit int
		var inherit bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT rolconnlimit, rolinherit FROM pg_roles WHERE rolname = $1`, p+"_reader").Scan(&limit, &inherit))
		assert.Equal(t, 4, limit)
		assert.True(t, inherit, "the CRD's default")
		require.NoError(t, admin.QueryRow(ctx, `SELECT rolconnlimit, rolinherit FROM pg_roles WHERE rolname = $1`, p+"_member").Scan(&limit, &inherit))
		assert.Equal(t, -1, limit, "the CRD's default")
		assert.False(t, inherit)
		// The test server trusts every local login, so the passwords are checked against their SCRAM
		// verifiers instead.
		for role, pw := range map[string]string{p + "_reader": "reader-pw", p + "_member": "member-pw", p + "_owner": "owner-pw"} {
			var verifier string
			require.NoError(t, admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&verifier))
			assert.True(t, scramMatches(t, verifier, pw), "%s has the password of its Secret", role)
			assert.False(t, scramMatches(t, verifier, "wrong"), "%s: a wrong password does not match", role)
		}
		var member bool
		require.NoError(t, admin.QueryRow(ctx, `SELECT pg_has_role($1, $2, 'MEMBER')`, p+"_member", p+"_owner").Scan(&member))
		assert.True(t, member)
		var owner string
		require.NoError(t, admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, p+"_app").Scan(&owner))
		assert.Equal(t, p+"_owner", owner)
	})
	t.Run("a Database", func(t *testing.T) {
		d := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgresql.cnpg.io/v1", "kind": "Database",
			"metadata": map[string]any{"name": "second", "namespace": ns},
			"spec":     map[string]any{"cluster": map[string]any{"name": "db"}, "name": p + "_second", "owner": p + "_member", "ensure": "present"},
		}}
		_, err := dyn.Resource(openshifttest.DatabaseGVR).Namespace(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		got := eventually(t, "the Database applied", getObj(dyn, openshifttest.DatabaseGVR, ns, "second"), func(u *unstructured.Unstructured) bool {
			applied, _, _ := unstructured.NestedBool(u.Object, "status", "applied")
			return applied
		})
		gen, _, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration")
		assert.Equal(t, got.GetGeneration(), gen)
		conn, err := pgx.Connect(ctx, pg.URL(p+"_second"))
		require.NoError(t, err)
		conn.Close(ctx)
	})
	t.Run("without bootstrap.initdb.secret the operator generates <cluster>-app", func(t *testing.T) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
			"metadata": map[string]any{"name": "plain", "namespace": ns},
			"spec": map[string]any{"instances": int64(1), "storage": map[string]any{"size": "1Gi"},
				"bootstrap": map[string]any{"initdb": map[string]any{"database": p + "_plain", "owner": p + "_plain"}}},
		}}
		_, err := dyn.Resource(openshifttest.ClusterGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, "the Cluster ready", getObj(dyn, openshifttest.ClusterGVR, ns, "plain"), func(u *unstructured.Unstructured) bool {
			return cond(u, "Ready") == "True"
		})
		app, err := cs.CoreV1().Secrets(ns).Get(ctx, "plain-app", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, corev1.SecretTypeBasicAuth, app.Type)
		assert.Equal(t, p+"_plain", string(app.Data["username"]))
		assert.Contains(t, string(app.Data["uri"]), "@plain-rw."+ns+":5432/"+p+"_plain")
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgresql://%s:%s@%s/%s?sslmode=require", p+"_plain", app.Data["password"], c.Addr(ns, "plain"), p+"_plain"))
		require.NoError(t, err, "the generated password logs in")
		conn.Close(ctx)
	})
}

func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// otherCA is a CA certificate that signed nothing the stand-in serves.
func otherCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// scramMatches checks password against a SCRAM-SHA-256 verifier as PostgreSQL stores it
// ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", RFC 5802).
func scramMatches(t *testing.T, verifier, password string) bool {
	t.Helper()
	var iter int
	var salt64, stored64, server64 string
	parts := strings.Split(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	require.Len(t, parts, 2, "a SCRAM-SHA-256 verifier: %q", verifier)
	head := strings.SplitN(parts[0], ":", 2)
	keys := strings.SplitN(parts[1], ":", 2)
	require.Len(t, head, 2)
	require.Len(t, keys, 2)
	_, err := fmt.Sscanf(head[0], "%d", &iter)
	require.NoError(t, err)
	salt64, stored64, server64 = head[1], keys[0], keys[1]
	_ = server64
	salt, err := base64.StdEncoding.DecodeString(salt64)
	require.NoError(t, err)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	require.NoError(t, err)
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	storedKey := sha256.Sum256(mac.Sum(nil))
	return base64.StdEncoding.EncodeToString(storedKey[:]) == stored64
}
