package openshifttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// CloudNativePG's kinds.
var (
	ClusterGVR  = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "clusters"}
	DatabaseGVR = schema.GroupVersionResource{Group: "postgresql.cnpg.io", Version: "v1", Resource: "databases"}
)

// The phases of a Cluster (api/v1/cluster_types.go) this stand-in reports; Argo CD's health check
// (resource_customizations/postgresql.cnpg.io/Cluster/health.lua) maps the first to Progressing, the
// second to Healthy.
const (
	PhaseSettingUpPrimary = "Setting up primary"
	PhaseHealthy          = "Cluster in healthy state"
)

// CNPG plays the CloudNativePG operator (github.com/cloudnative-pg/cloudnative-pg, the 1.27 line) and its
// instance manager, against a real PostgreSQL: what they do to the API and to the database, not how.
// Why a stand-in rather than the real operator: the operator reconciles instance Pods whose instance
// manager runs initdb and postgres inside the container and answers the operator on each pod's IP,
// port 8000; the kubelet stand-in runs no container image and gives every pod 127.0.0.1, so three
// instances cannot be told apart, and the operator's webhooks need serving certificates the apiserver
// trusts. For each Cluster (internal/controller/cluster_controller.go and what it creates):
//
//   - Secrets <name>-ca (ca.crt, ca.key: the self-signed CA it generates, pkg/certs), <name>-server
//     (kubernetes.io/tls, signed by it, for the -rw/-r/-ro Service names) and <name>-replication;
//     <name>-app (kubernetes.io/basic-auth: username, password, host, port, dbname, uri, jdbc-uri,
//     pgpass) unless bootstrap.initdb.secret names the owner's Secret, as pkg/specs/secrets.go;
//   - Services <name>-rw (primary), <name>-ro (replicas), <name>-r (any), port 5432 "postgres",
//     owned by the Cluster (pkg/specs/services.go);
//   - bootstrap: the owner role of bootstrap.initdb (password from its Secret) and the database;
//     managed.roles (internal/management/controller/roles): CREATE/ALTER ROLE with login, superuser,
//     createdb, createrole, inherit, replication, bypassrls, connectionLimit and the password of
//     passwordSecret (whose username must be the role's), GRANT/REVOKE of inRoles, DROP for ensure:
//     absent; what cannot be reconciled goes to status.managedRolesStatus.cannotReconcile;
//   - status: instances, readyInstances, instancesStatus, currentPrimary, targetPrimary, writeService,
//     readService, certificates, phase and phaseReason, and the Ready condition (reason ClusterIsReady)
//     once the bootstrap is done; "Setting up primary" before.
//
// Databases (internal/management/controller/database_controller.go): CREATE DATABASE / ALTER DATABASE
// OWNER for ensure: present once their Cluster is ready; status.applied, message and
// observedGeneration as Argo CD's Database health check reads them.
//
// The instances are one real PostgreSQL (Server's), served through a TLS front with the server
// certificate (so sslmode=verify-full with <name>-ca's ca.crt works), whose certificate also names
// 127.0.0.1: the address tests rewrite the Service names to. Not played: instance Pods, PDBs,
// failover, WAL archiving and backups (ScheduledBackup, Backup), the webhook's spec defaults (the
// CRD schema's defaults are the apiserver's), monitoring.
type CNPG struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// AdminURL is a superuser URL of database db on the real PostgreSQL.
	AdminURL func(db string) string
	// Database maps a Cluster's database name to the one on the shared server (default: the same).
	Database func(ns, db string) string
	// OnDatabase is called for each database it creates (so that a test can drop it).
	OnDatabase func(ns, db string)
	Log        Logf

	clusters cache.GenericLister
	mu       sync.Mutex
	fronts   map[string]*tlsFront // ns/name -> the instances' front
}

// Start runs the stand-in until ctx ends. When CloudNativePG's CRDs exist it returns once its informers
// have synced; otherwise (OLM installs them later, as on a cluster where the operator is not installed
// yet) it starts when they appear, as the operator's Deployment does once OLM created it.
func (c *CNPG) Start(ctx context.Context, wg *sync.WaitGroup) error {
	c.mu.Lock()
	c.fronts = map[string]*tlsFront{}
	c.mu.Unlock()
	if _, err := c.Dynamic.Resource(ClusterGVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		return c.start(ctx, wg)
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("cnpg: listing Clusters: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_, errC := c.Dynamic.Resource(ClusterGVR).List(ctx, metav1.ListOptions{Limit: 1})
			_, errD := c.Dynamic.Resource(DatabaseGVR).List(ctx, metav1.ListOptions{Limit: 1})
			if errC == nil && errD == nil {
				c.Log.printf("cnpg: the CloudNativePG CRDs exist: the operator starts")
				if err := c.start(ctx, wg); err != nil && ctx.Err() == nil {
					c.Log.printf("cnpg: %v", err)
				}
				return
			}
		}
	}()
	return nil
}

func (c *CNPG) start(ctx context.Context, wg *sync.WaitGroup) error {
	if c.Database == nil {
		c.Database = func(_, db string) string { return db }
	}
	// A short resync: a role's Secret created after its Cluster is picked up, as the instance manager's
	// periodic role reconciliation does.
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.Dynamic, 5*time.Second)
	clInf := factory.ForResource(ClusterGVR)
	dbInf := factory.ForResource(DatabaseGVR)
	c.clusters = clInf.Lister()
	cl := newController("cnpg", c.Log, c.syncCluster)
	if _, err := clInf.Informer().AddEventHandler(cl.handler()); err != nil {
		return err
	}
	dbs := newController("cnpg-database", c.Log, c.syncDatabase)
	if _, err := dbInf.Informer().AddEventHandler(dbs.handler()); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, f := range c.fronts {
			f.Close()
		}
	}()
	if err := cl.run(ctx, wg, 1, []informerFactory{factory}, clInf.Informer().HasSynced, dbInf.Informer().HasSynced); err != nil {
		return err
	}
	return dbs.run(ctx, wg, 1, nil)
}

// Addr returns host:port of the instances of Cluster ns/name ("" before they run): where its Service
// names lead.
func (c *CNPG) Addr(ns, name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fronts[ns+"/"+name]; f != nil {
		return f.Addr()
	}
	return ""
}

// Sessions returns how many database sessions went through Cluster ns/name's Services so far.
func (c *CNPG) Sessions(ns, name string) int64 {
	all, _ := c.SessionsByTLS(ns, name)
	return all
}

// SessionsByTLS returns how many database sessions went through Cluster ns/name's Services so far, and
// how many of them did not ask for TLS.
func (c *CNPG) SessionsByTLS(ns, name string) (all, plain int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.fronts[ns+"/"+name]; f != nil {
		return f.conns.Load(), f.plain.Load()
	}
	return 0, 0
}

// ServiceNames are the Services of a Cluster, read-write first.
func ServiceNames(cluster string) []string {
	return []string{cluster + "-rw", cluster + "-ro", cluster + "-r"}
}

func (c *CNPG) syncCluster(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	obj, err := c.clusters.ByNamespace(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		if f := c.fronts[key]; f != nil {
			f.Close()
			delete(c.fronts, key)
		}
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	cl := obj.(*unstructured.Unstructured).DeepCopy()
	if cl.GetDeletionTimestamp() != nil {
		return nil
	}
	owner := metav1.OwnerReference{APIVersion: "postgresql.cnpg.io/v1", Kind: "Cluster", Name: name, UID: cl.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	ca, caKey, err := c.ensureCA(ctx, ns, name, owner)
	if err != nil {
		return err
	}
	serverCert, err := c.ensureServerCert(ctx, ns, name, owner, ca, caKey)
	if err != nil {
		return err
	}
	if err := c.ensureServices(ctx, ns, name, owner); err != nil {
		return err
	}
	c.mu.Lock()
	front := c.fronts[key]
	c.mu.Unlock()
	if front == nil {
		u, err := url.Parse(c.AdminURL("postgres"))
		if err != nil {
			return err
		}
		if front, err = startTLSFront(u.Host, serverCert); err != nil {
			return err
		}
		c.mu.Lock()
		c.fronts[key] = front
		c.mu.Unlock()
	}
	instances, found, _ := unstructured.NestedInt64(cl.Object, "spec", "instances")
	if !found {
		instances = 1
	}
	status := map[string]any{
		"instances": instances, "readyInstances": int64(0),
		"currentPrimary": name + "-1", "targetPrimary": name + "-1", "latestGeneratedNode": instances,
		"writeService": name + "-rw", "readService": name + "-r",
		"certificates": map[string]any{
			"clientCASecret": name + "-ca", "serverCASecret": name + "-ca", "serverTLSSecret": name + "-server",
			"replicationTLSSecret": name + "-replication",
			"serverAltDNSNames":    []any{},
		},
	}
	if err := c.bootstrap(ctx, ns, cl); err != nil {
		status["phase"] = PhaseSettingUpPrimary
		status["phaseReason"] = err.Error()
		status["conditions"] = []any{map[string]any{"type": "Ready", "status": "False", "reason": "ClusterIsNotReady", "message": "Cluster Is Not Ready"}}
		if serr := c.setStatus(ctx, cl, status); serr != nil {
			return serr
		}
		return err
	}
	roles := c.reconcileRoles(ctx, ns, cl)
	var healthy []any
	for i := int64(1); i <= instances; i++ {
		healthy = append(healthy, fmt.Sprintf("%s-%d", name, i))
	}
	status["readyInstances"] = instances
	status["instancesStatus"] = map[string]any{"healthy": healthy}
	status["phase"] = PhaseHealthy
	status["phaseReason"] = ""
	status["managedRolesStatus"] = roles
	status["conditions"] = []any{map[string]any{"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready"}}
	return c.setStatus(ctx, cl, status)
}

func (c *CNPG) setStatus(ctx context.Context, cl *unstructured.Unstructured, status map[string]any) error {
	old, _, _ := unstructured.NestedMap(cl.Object, "status")
	if sameIgnoringTimes(old, status) {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	if conds, ok := status["conditions"].([]any); ok {
		for _, x := range conds {
			x.(map[string]any)["lastTransitionTime"] = now
		}
	}
	cl.Object["status"] = status
	_, err := c.Dynamic.Resource(ClusterGVR).Namespace(cl.GetNamespace()).UpdateStatus(ctx, cl, metav1.UpdateOptions{FieldManager: "cloudnative-pg"})
	if err == nil {
		c.Log.printf("cnpg: cluster %s/%s: %s", cl.GetNamespace(), cl.GetName(), status["phase"])
	}
	return err
}

// secret reads Secret ns/name's data.
func (c *CNPG) secret(ctx context.Context, ns, name string) (map[string][]byte, error) {
	s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return s.Data, nil
}

func (c *CNPG) createSecret(ctx context.Context, s *corev1.Secret) error {
	_, err := c.Client.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{FieldManager: "cloudnative-pg"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

func (c *CNPG) ensureCA(ctx context.Context, ns, name string, owner metav1.OwnerReference) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	secretName := name + "-ca"
	data, err := c.secret(ctx, ns, secretName)
	if apierrors.IsNotFound(err) {
		caPEM, keyPEM, err := newCA(ns, name)
		if err != nil {
			return nil, nil, err
		}
		data = map[string][]byte{"ca.crt": caPEM, "ca.key": keyPEM}
		if err := c.createSecret(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns, OwnerReferences: []metav1.OwnerReference{owner},
				Labels: map[string]string{"cnpg.io/cluster": name, "cnpg.io/reload": "true"}},
			Data: data,
		}); err != nil {
			return nil, nil, err
		}
		// Read back: a concurrent creation wins.
		if data, err = c.secret(ctx, ns, secretName); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, err
	}
	cert, key, err := parseCA(data["ca.crt"], data["ca.key"])
	if err != nil {
		return nil, nil, fmt.Errorf("Secret %s/%s: %w", ns, secretName, err)
	}
	return cert, key, nil
}

// newCA makes the self-signed CA of Cluster ns/name, PEM encoded, as CloudNativePG's pkg/certs does.
func newCA(ns, name string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{ns}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("the CA key is not ECDSA")
	}
	return cert, key, nil
}

func (c *CNPG) ensureServerCert(ctx context.Context, ns, name string, owner metav1.OwnerReference, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (tls.Certificate, error) {
	secretName := name + "-server"
	data, err := c.secret(ctx, ns, secretName)
	if apierrors.IsNotFound(err) {
		certPEM, keyPEM, err := newServerCert(ns, name, ca, caKey)
		if err != nil {
			return tls.Certificate{}, err
		}
		data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
		if err := c.createSecret(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns, OwnerReferences: []metav1.OwnerReference{owner},
				Labels: map[string]string{"cnpg.io/cluster": name, "cnpg.io/reload": "true"}},
			Type: corev1.SecretTypeTLS, Data: data,
		}); err != nil {
			return tls.Certificate{}, err
		}
		if data, err = c.secret(ctx, ns, secretName); err != nil {
			return tls.Certificate{}, err
		}
	} else if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey])
}

// newServerCert makes the server certificate of Cluster ns/name, signed by ca: its Services' names in
// every in-cluster form (pkg/certs), and 127.0.0.1, the address tests rewrite the Services to.
func newServerCert(ns, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	var dns []string
	for _, svc := range ServiceNames(name) {
		dns = append(dns, svc, svc+"."+ns, svc+"."+ns+".svc", svc+"."+ns+".svc.cluster.local")
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name + "-rw"},
		DNSNames:     dns,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func (c *CNPG) ensureServices(ctx context.Context, ns, name string, owner metav1.OwnerReference) error {
	roles := map[string]string{name + "-rw": "primary", name + "-ro": "replica", name + "-r": ""}
	for _, svc := range ServiceNames(name) {
		sel := map[string]string{"cnpg.io/cluster": name}
		if r := roles[svc]; r != "" {
			sel["cnpg.io/instanceRole"] = r
		}
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns, OwnerReferences: []metav1.OwnerReference{owner},
				Labels: map[string]string{"cnpg.io/cluster": name}},
			Spec: corev1.ServiceSpec{
				Selector: sel,
				Ports:    []corev1.ServicePort{{Name: "postgres", Port: 5432, TargetPort: intstr.FromInt32(5432), Protocol: corev1.ProtocolTCP}},
			},
		}
		_, err := c.Client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{FieldManager: "cloudnative-pg"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Service %s/%s: %w", ns, svc, err)
		}
	}
	return nil
}

func (c *CNPG) admin(ctx context.Context, db, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, c.AdminURL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// bootstrap creates bootstrap.initdb's owner and database (once; later runs find them).
func (c *CNPG) bootstrap(ctx context.Context, ns string, cl *unstructured.Unstructured) error {
	db, _, _ := unstructured.NestedString(cl.Object, "spec", "bootstrap", "initdb", "database")
	owner, _, _ := unstructured.NestedString(cl.Object, "spec", "bootstrap", "initdb", "owner")
	secretName, _, _ := unstructured.NestedString(cl.Object, "spec", "bootstrap", "initdb", "secret", "name")
	if db == "" {
		db = "app"
	}
	if owner == "" {
		owner = db
	}
	var password string
	if secretName == "" {
		// The operator generates the owner's credentials in <name>-app.
		secretName = cl.GetName() + "-app"
		if _, err := c.secret(ctx, ns, secretName); apierrors.IsNotFound(err) {
			pw := randomPassword()
			host := cl.GetName() + "-rw"
			uri := fmt.Sprintf("postgresql://%s:%s@%s.%s:5432/%s", owner, pw, host, ns, db)
			if err := c.createSecret(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns, Labels: map[string]string{"cnpg.io/cluster": cl.GetName(), "cnpg.io/reload": "true"},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "postgresql.cnpg.io/v1", Kind: "Cluster", Name: cl.GetName(), UID: cl.GetUID(), Controller: ptr.To(true)}}},
				Type: corev1.SecretTypeBasicAuth,
				StringData: map[string]string{
					"username": owner, "password": pw, "host": host, "port": "5432", "dbname": db, "user": owner,
					"uri":      uri,
					"jdbc-uri": fmt.Sprintf("jdbc:postgresql://%s.%s:5432/%s?password=%s&user=%s", host, ns, db, pw, owner),
					"pgpass":   fmt.Sprintf("%s:5432:%s:%s:%s\n", host, db, owner, pw),
				},
			}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	data, err := c.secret(ctx, ns, secretName)
	if err != nil {
		return fmt.Errorf("reading the owner's Secret %s: %w", secretName, err)
	}
	if u := string(data["username"]); u != owner {
		return fmt.Errorf("Secret %s: username %q is not the owner %q", secretName, u, owner)
	}
	password = string(data["password"])
	if err := c.applyRole(ctx, role{name: owner, login: true, inherit: true, connLimit: -1, password: &password}); err != nil {
		return fmt.Errorf("creating the owner %s: %w", owner, err)
	}
	return c.ensureDatabase(ctx, ns, db, owner)
}

func (c *CNPG) ensureDatabase(ctx context.Context, ns, db, owner string) error {
	local := c.Database(ns, db)
	err := c.admin(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{local}.Sanitize(), pgx.Identifier{owner}.Sanitize()))
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("creating database %s: %w", db, err)
	}
	if err == nil && c.OnDatabase != nil {
		c.OnDatabase(ns, local)
	}
	return c.admin(ctx, "postgres", fmt.Sprintf("ALTER DATABASE %s OWNER TO %s", pgx.Identifier{local}.Sanitize(), pgx.Identifier{owner}.Sanitize()))
}

func randomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// role is one managed role as the instance manager applies it.
type role struct {
	name                                                                 string
	absent                                                               bool
	login, superuser, createdb, createrole, inherit, replication, bypass bool
	connLimit                                                            int64
	inRoles                                                              []string
	password                                                             *string
}

func (r role) attributes() string {
	flag := func(on bool, name string) string {
		if on {
			return name
		}
		return "NO" + name
	}
	return strings.Join([]string{flag(r.login, "LOGIN"), flag(r.superuser, "SUPERUSER"), flag(r.createdb, "CREATEDB"),
		flag(r.createrole, "CREATEROLE"), flag(r.inherit, "INHERIT"), flag(r.replication, "REPLICATION"),
		flag(r.bypass, "BYPASSRLS"), fmt.Sprintf("CONNECTION LIMIT %d", r.connLimit)}, " ")
}

func (c *CNPG) applyRole(ctx context.Context, r role) error {
	id := pgx.Identifier{r.name}.Sanitize()
	if r.absent {
		return c.admin(ctx, "postgres", "DROP ROLE IF EXISTS "+id)
	}
	pw := ""
	if r.password != nil {
		pw = " PASSWORD " + quoteLiteral(*r.password)
	}
	err := c.admin(ctx, "postgres", fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[1]s) THEN CREATE ROLE %[2]s %[3]s%[4]s;
  ELSE ALTER ROLE %[2]s %[3]s%[4]s; END IF; END $$`, quoteLiteral(r.name), id, r.attributes(), pw))
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, c.AdminURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
		JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1`, r.name)
	if err != nil {
		return err
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, g := range r.inRoles {
		if !slices.Contains(have, g) {
			if _, err := conn.Exec(ctx, fmt.Sprintf("GRANT %s TO %s", pgx.Identifier{g}.Sanitize(), id)); err != nil {
				return err
			}
		}
	}
	for _, g := range have {
		if !slices.Contains(r.inRoles, g) {
			if _, err := conn.Exec(ctx, fmt.Sprintf("REVOKE %s FROM %s", pgx.Identifier{g}.Sanitize(), id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reconcileRoles applies spec.managed.roles and returns status.managedRolesStatus.
func (c *CNPG) reconcileRoles(ctx context.Context, ns string, cl *unstructured.Unstructured) map[string]any {
	specs, _, _ := unstructured.NestedSlice(cl.Object, "spec", "managed", "roles")
	var reconciled []any
	cannot := map[string]any{}
	for _, x := range specs {
		m, _ := x.(map[string]any)
		get := func(k string, def bool) bool {
			if v, ok := m[k].(bool); ok {
				return v
			}
			return def
		}
		r := role{
			absent: m["ensure"] == "absent", login: get("login", false), superuser: get("superuser", false),
			createdb: get("createdb", false), createrole: get("createrole", false), inherit: get("inherit", true),
			replication: get("replication", false), bypass: get("bypassrls", false), connLimit: -1,
		}
		r.name, _ = m["name"].(string)
		if v, ok := m["connectionLimit"].(int64); ok {
			r.connLimit = v
		}
		if in, ok := m["inRoles"].([]any); ok {
			for _, g := range in {
				if s, ok := g.(string); ok {
					r.inRoles = append(r.inRoles, s)
				}
			}
		}
		if ps, ok := m["passwordSecret"].(map[string]any); ok {
			secretName, _ := ps["name"].(string)
			data, err := c.secret(ctx, ns, secretName)
			if err != nil {
				cannot[r.name] = []any{fmt.Sprintf("reading the password Secret %s: %v", secretName, err)}
				continue
			}
			if u := string(data["username"]); u != r.name {
				cannot[r.name] = []any{fmt.Sprintf("Secret %s: username %q does not match the role name", secretName, u)}
				continue
			}
			pw := string(data["password"])
			r.password = &pw
		}
		if err := c.applyRole(ctx, r); err != nil {
			cannot[r.name] = []any{err.Error()}
			continue
		}
		reconciled = append(reconciled, r.name)
	}
	st := map[string]any{"byStatus": map[string]any{"reconciled": reconciled}}
	if len(cannot) > 0 {
		st["cannotReconcile"] = cannot
		c.Log.printf("cnpg: cluster %s/%s: roles not reconciled: %v", ns, cl.GetName(), cannot)
	}
	return st
}

// syncDatabase plays the Database controller.
func (c *CNPG) syncDatabase(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	res := c.Dynamic.Resource(DatabaseGVR).Namespace(ns)
	d, err := res.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	cluster, _, _ := unstructured.NestedString(d.Object, "spec", "cluster", "name")
	db, _, _ := unstructured.NestedString(d.Object, "spec", "name")
	owner, _, _ := unstructured.NestedString(d.Object, "spec", "owner")
	ensure, _, _ := unstructured.NestedString(d.Object, "spec", "ensure")
	var applyErr error
	clObj, err := c.clusters.ByNamespace(ns).Get(cluster)
	switch {
	case err != nil:
		applyErr = fmt.Errorf("cluster %s: %w", cluster, err)
	default:
		if ready, _, _ := unstructured.NestedInt64(clObj.(*unstructured.Unstructured).Object, "status", "readyInstances"); ready == 0 {
			applyErr = fmt.Errorf("cluster %s is not ready", cluster)
		} else if ensure == "absent" {
			applyErr = c.admin(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{c.Database(ns, db)}.Sanitize())
		} else {
			applyErr = c.ensureDatabase(ctx, ns, db, owner)
		}
	}
	status := map[string]any{"applied": applyErr == nil, "observedGeneration": d.GetGeneration()}
	if applyErr != nil {
		status["message"] = applyErr.Error()
		// The first reconcile of a generation not applied yet keeps no observedGeneration (SetAsFailed).
		if old, ok, _ := unstructured.NestedInt64(d.Object, "status", "observedGeneration"); ok {
			status["observedGeneration"] = old
		} else {
			delete(status, "observedGeneration")
		}
	}
	old, _, _ := unstructured.NestedMap(d.Object, "status")
	if !sameIgnoringTimes(old, status) {
		d.Object["status"] = status
		if _, err := res.UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: "cloudnative-pg"}); err != nil {
			return err
		}
		c.Log.printf("cnpg: database %s/%s: applied=%v", ns, name, applyErr == nil)
	}
	return applyErr
}
