package secrets

// Login Secrets of the PostgreSQL roles of the CloudNativePG profile (gitops/components/ha).
//
// CloudNativePG creates and updates each managed role from a Secret of type kubernetes.io/basic-auth
// (keys username and password). The job generates these Secrets, with the same rules as the contract
// Secrets: an existing password is never replaced, a missing one is generated, a malformed value stops
// the run before anything is written. Each Secret also holds the database URLs of its consumer, built
// from its own username and password, so that every pod references exactly one role.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// Keys of a role Secret. username and password are CloudNativePG's.
const (
	KeyRoleUsername = corev1.BasicAuthUsernameKey
	KeyRolePassword = corev1.BasicAuthPasswordKey
)

// LabelCNPGReload makes CloudNativePG re-read a Secret it uses when it changes.
const LabelCNPGReload = "cnpg.io/reload"

// RoleURL is a database URL a role Secret carries for its consumer.
type RoleURL struct {
	Key string
	// Backend selects Settings.BackendDatabase (with ?sslmode=disable, as the backend needs it, when
	// Settings.PostgresCAFile is empty), otherwise Settings.LiteLLMDatabase.
	Backend bool
	// Prisma: the URL is read by Prisma (LiteLLM), whose TLS parameters differ from libpq's (read by
	// pgx, node-postgres and psql); see roleURL.
	Prisma bool
}

// KeyLibpqDatabaseURL holds LiteLLM's database URL in libpq's form, for its wait container (psql):
// libpq would misread the Prisma form of DATABASE_URL (sslcert is a client certificate there).
const KeyLibpqDatabaseURL = "LIBPQ_DATABASE_URL"

// RoleSecret is one managed role: the Secret's name, the role's name and the URLs its consumer reads.
type RoleSecret struct {
	Name     string
	Username string
	URLs     []RoleURL
}

// RoleContract is the least-privilege split of the CloudNativePG profile. The names are referenced by
// gitops/components/ha (Cluster managed roles, Database owners, the pods' secretKeyRefs): keep them.
var RoleContract = []RoleSecret{
	// Owns litemaas_db (creates its tables at start).
	{Name: "litemaas-db-backend", Username: "litemaas_backend", URLs: []RoleURL{{Key: KeyDatabaseURL, Backend: true}}},
	// The backend's LITELLM_DATABASE_URL: reads LiteLLM_ProxyModelTable in litellm_db, nothing else (as
	// RoleModelReader in the single-instance profile).
	{Name: "litemaas-db-model-reader", Username: "litemaas_model_reader", URLs: []RoleURL{{Key: KeyLiteLLMDatabaseURL}}},
	// Owns litellm_db (LiteLLM migrates its own schema).
	{Name: "litemaas-db-litellm", Username: "litellm", URLs: []RoleURL{{Key: KeyDatabaseURL, Prisma: true}, {Key: KeyLibpqDatabaseURL}}},
	// The litemaas-sync job: writes models rows and relaxes users.oauth_id in litemaas_db.
	{Name: "litemaas-db-job", Username: "litemaas_job", URLs: []RoleURL{{Key: KeyDatabaseURL, Backend: true}}},
	// Read-only logical exports (pg_dump) of both databases.
	{Name: "litemaas-db-backup", Username: "litemaas_backup"},
}

// RoleResult is what SyncRoles did, per Secret.
type RoleResult struct {
	Secrets []SecretResult
}

// Summary names Secrets and keys, never values.
func (r *RoleResult) Summary() string {
	var parts []string
	for _, s := range r.Secrets {
		part := s.Name + " " + string(s.Action)
		if len(s.Added) > 0 {
			part += " (" + strings.Join(s.Added, ", ") + ")"
		}
		if len(s.Replaced) > 0 {
			part += " (rebuilt " + strings.Join(s.Replaced, ", ") + ")"
		}
		parts = append(parts, part)
	}
	return "role secrets: " + strings.Join(parts, "; ")
}

// SyncRoles creates the missing role Secrets of RoleContract in namespace and fills missing keys.
// Every existing Secret is validated first; on any problem it returns a *ValidationError and writes
// nothing. The database URLs point at s.PostgresHost (the Cluster's read-write Service). rnd nil means
// crypto/rand.
func SyncRoles(ctx context.Context, dc dynamic.Interface, namespace string, s Settings, rnd io.Reader, log *slog.Logger) (*RoleResult, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	client := kube.Secrets(dc, namespace)
	existing := map[string]*corev1.Secret{}
	var red redactor
	for _, rs := range RoleContract {
		sec, err := client.Get(ctx, rs.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("reading Secret %s/%s: the job's ServiceAccount needs `get` on it (Role litemaas-secrets, patched by the ha component): %w", namespace, rs.Name, err)
		case err != nil:
			return nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, rs.Name, err)
		default:
			existing[rs.Name] = sec
			for k, v := range sec.Data {
				if k != KeyRoleUsername {
					red.add(string(v))
				}
			}
		}
	}
	plans, err := computeRoles(existing, s, rnd)
	if err != nil {
		return nil, err
	}
	// Passwords and URLs are redacted from errors; user names are not secret (and "litellm" is a word of
	// every message).
	for _, sp := range plans {
		for k, v := range sp.Data {
			if k != KeyRoleUsername {
				red.add(string(v))
			}
		}
	}
	res := &RoleResult{}
	for _, sp := range plans {
		r, err := applyRole(ctx, client, namespace, sp, log)
		if err != nil {
			return res, red.wrap(err)
		}
		res.Secrets = append(res.Secrets, r)
	}
	return res, nil
}

// computeRoles is the pure part of SyncRoles: validation and generation.
func computeRoles(existing map[string]*corev1.Secret, s Settings, rnd io.Reader) ([]*SecretPlan, error) {
	var problems []Problem
	var plans []*SecretPlan
	for _, rs := range RoleContract {
		sp := &SecretPlan{Name: rs.Name, Existing: existing[rs.Name], Data: map[string][]byte{}}
		plans = append(plans, sp)
		bad := func(key, format string, a ...any) {
			problems = append(problems, Problem{Secret: rs.Name, Key: key, Message: fmt.Sprintf(format, a...)})
		}
		if sp.Existing != nil {
			for k, v := range sp.Existing.Data {
				sp.Data[k] = slices.Clone(v)
			}
			if sp.Existing.Type != corev1.SecretTypeBasicAuth {
				bad("", "has type %s, want %s (CloudNativePG reads only that type); delete it so that it is re-created", sp.Existing.Type, corev1.SecretTypeBasicAuth)
				continue
			}
		}
		add := func(key, value string) {
			sp.Data[key] = []byte(value)
			sp.Added = append(sp.Added, key)
		}
		if v, ok := sp.Data[KeyRoleUsername]; !ok {
			add(KeyRoleUsername, rs.Username)
		} else if string(v) != rs.Username {
			bad(KeyRoleUsername, "must be %s (the role the Cluster manages with this Secret)", rs.Username)
			continue
		}
		password, hadPassword := sp.Data[KeyRolePassword]
		if hadPassword {
			if msg := checkText(password, true); msg != "" {
				bad(KeyRolePassword, "%s", msg)
				continue
			}
		} else {
			for _, u := range rs.URLs {
				if _, ok := sp.Data[u.Key]; ok {
					bad(KeyRolePassword, "is missing, but %s holds a password: restore password (the one in %s), or delete %s too if the role is new", u.Key, u.Key, u.Key)
				}
			}
			v, err := randomString(rnd, passwordLength, alphanumeric)
			if err != nil {
				return nil, fmt.Errorf("generating %s/%s: %w", rs.Name, KeyRolePassword, err)
			}
			password = []byte(v)
			add(KeyRolePassword, v)
		}
		for _, u := range rs.URLs {
			want := roleURL(s, rs.Username, string(password), u)
			got, ok := sp.Data[u.Key]
			switch {
			case !ok:
				add(u.Key, want)
			case string(got) == want:
			case sameButQuery(string(got), want):
				// The same role, server and database with other connection parameters: an URL of an
				// earlier release or of other TLS settings. The key is derived, so it is rebuilt.
				sp.Data[u.Key] = []byte(want)
				sp.Replaced = append(sp.Replaced, u.Key)
			case string(got) != want:
				bad(u.Key, "differs from the URL built from username, password and the job's POSTGRES_HOST/POSTGRES_PORT "+
					"(postgresql://<username>:<password>@%s/%s); delete the key so that it is rebuilt",
					net.JoinHostPort(s.PostgresHost, strconv.Itoa(s.PostgresPort)), roleDatabase(s, u))
			}
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return plans, nil
}

func roleDatabase(s Settings, u RoleURL) string {
	if u.Backend {
		return s.BackendDatabase
	}
	return s.LiteLLMDatabase
}

// roleURL builds a role's URL. Without a CA it is built as the contract's URLs are: the backend's with
// ?sslmode=disable. With Settings.PostgresCAFile the server's certificate and host name are verified,
// in the parameters of the consumer's client library:
//   - libpq (psql), pgx (the job) and node-postgres (the backend, through pg-connection-string):
//     sslmode=verify-full&sslrootcert=<CA file>;
//   - Prisma (LiteLLM), which knows neither verify-full nor sslrootcert: sslmode=require with
//     sslcert=<CA file> (Prisma's name for the server's root certificate) and sslaccept=strict (verify
//     the certificate and the host name; Prisma's default accepts any certificate).
func roleURL(s Settings, user, password string, u RoleURL) string {
	out := url.URL{
		Scheme: "postgresql",
		User:   url.UserPassword(user, password),
		Host:   net.JoinHostPort(s.PostgresHost, strconv.Itoa(s.PostgresPort)),
		Path:   "/" + roleDatabase(s, u),
	}
	switch {
	case s.PostgresCAFile != "" && u.Prisma:
		out.RawQuery = "sslmode=require&sslcert=" + s.PostgresCAFile + "&sslaccept=strict"
	case s.PostgresCAFile != "":
		out.RawQuery = "sslmode=verify-full&sslrootcert=" + s.PostgresCAFile
	case u.Backend:
		out.RawQuery = "sslmode=disable"
	}
	return out.String()
}

// sameButQuery reports whether two database URLs name the same role, password, server and database
// and differ at most in their query (the connection parameters).
func sameButQuery(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil || ua.User == nil || ub.User == nil {
		return false
	}
	pa, _ := ua.User.Password()
	pb, _ := ub.User.Password()
	return ua.Scheme == ub.Scheme && ua.User.Username() == ub.User.Username() && pa == pb &&
		ua.Host == ub.Host && ua.Path == ub.Path && ua.Fragment == "" && ub.Fragment == ""
}

func applyRole(ctx context.Context, client interface {
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
	Update(context.Context, *corev1.Secret, metav1.UpdateOptions) (*corev1.Secret, error)
}, namespace string, sp *SecretPlan, log *slog.Logger) (SecretResult, error) {
	r := SecretResult{Name: sp.Name, Added: sp.Added}
	if sp.Existing == nil {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:        sp.Name,
				Namespace:   namespace,
				Labels:      map[string]string{LabelPartOf: "litemaas", LabelManagedBy: ManagedBy, LabelCNPGReload: "true"},
				Annotations: argoAnnotations(),
			},
			Type: corev1.SecretTypeBasicAuth,
			Data: sp.Data,
		}
		if _, err := client.Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return r, fmt.Errorf("creating Secret %s: it was created by someone else while the job ran; the next attempt starts over: %w", sp.Name, err)
			}
			return r, fmt.Errorf("creating Secret %s/%s: %w", namespace, sp.Name, err)
		}
		r.Action = Created
		log.Info("secret created", "secret", sp.Name, "keys", sp.Added)
		return r, nil
	}
	missing := missingAnnotations(sp.Existing)
	if len(sp.Added) == 0 && len(sp.Replaced) == 0 && len(missing) == 0 {
		r.Action = Unchanged
		log.Info("secret unchanged", "secret", sp.Name)
		return r, nil
	}
	sec := sp.Existing.DeepCopy()
	sec.Data = sp.Data
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	for _, k := range missing {
		sec.Annotations[k] = argoAnnotations()[k]
	}
	if _, err := client.Update(ctx, sec, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsConflict(err) {
			return r, fmt.Errorf("updating Secret %s: it changed while the job ran; the next attempt starts over: %w", sp.Name, err)
		}
		return r, fmt.Errorf("updating Secret %s/%s: %w", namespace, sp.Name, err)
	}
	r.Action = Filled
	if len(sp.Added) == 0 && len(sp.Replaced) == 0 {
		r.Action = Annotated
	}
	r.Replaced = sp.Replaced
	log.Info("secret "+string(r.Action), "secret", sp.Name, "keysAdded", sp.Added, "keysRebuilt", sp.Replaced, "annotationsAdded", missing)
	return r, nil
}
