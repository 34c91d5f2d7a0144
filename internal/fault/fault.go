// Package fault is the one place that tells an error no retry can fix from one that may go away by
// itself. A wrong database password, a missing database, a LiteLLM or API server that refuses the
// job's credentials, or a certificate the job does not trust stay wrong however long the job waits:
// such a run must end at once (exit 2) naming the setting to fix, not wait out WAIT_TIMEOUT.
package fault

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

// Reasons of permanent errors, as the status ConfigMap and the Job's Event show them.
const (
	DatabaseAuth         = "DatabaseAuthenticationFailed"
	DatabaseMissing      = "DatabaseNotFound"
	LiteLLMUnauthorized  = "LiteLLMUnauthorized"
	KubernetesForbidden  = "KubernetesForbidden"
	UntrustedCertificate = "UntrustedCertificate"
)

// Component names the side an error came from, for the errors whose type does not say it (a
// certificate error looks the same from PostgreSQL, LiteLLM and the API server).
type Component string

const (
	Unknown    Component = ""
	Postgres   Component = "postgres"
	LiteLLM    Component = "litellm"
	Kubernetes Component = "kubernetes"
)

// Permanent is an error that retrying cannot fix. Setting names what the operator must change.
type Permanent struct {
	Reason  string
	Setting string
	Err     error
}

// Error names the setting to fix first, then what failed.
func (e *Permanent) Error() string { return fmt.Sprintf("fix %s: %v", e.Setting, e.Err) }
func (e *Permanent) Unwrap() error { return e.Err }

// Classify returns err as a *Permanent when no retry can fix it, else nil (transient or unknown:
// the caller's own rules apply). from says where err came from when its type does not.
func Classify(from Component, err error) *Permanent {
	if err == nil {
		return nil
	}
	var p *Permanent
	if errors.As(err, &p) {
		return p
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "28": // invalid authorization specification: wrong password, unknown role, pg_hba refusal
			return &Permanent{Reason: DatabaseAuth, Setting: "DATABASE_URL user or password (PostgreSQL refused them, SQLSTATE " + pgErr.Code + ")", Err: err}
		case "3D": // invalid catalog name: the database does not exist
			return &Permanent{Reason: DatabaseMissing, Setting: "DATABASE_URL database (it does not exist, SQLSTATE " + pgErr.Code + ")", Err: err}
		}
	}
	var apiErr *litellm.APIError
	if errors.As(err, &apiErr) && (apiErr.StatusCode == 401 || apiErr.StatusCode == 403) {
		return &Permanent{Reason: LiteLLMUnauthorized, Setting: fmt.Sprintf("LITELLM_MASTER_KEY (LiteLLM answered %d: it is not the proxy's master key)", apiErr.StatusCode), Err: err}
	}
	if apierrors.IsUnauthorized(err) {
		return &Permanent{Reason: KubernetesForbidden, Setting: "the job's ServiceAccount token (the API server answered 401 Unauthorized)", Err: err}
	}
	if apierrors.IsForbidden(err) {
		return &Permanent{Reason: KubernetesForbidden, Setting: "the job ServiceAccount's Role (the API server answered 403 Forbidden)", Err: err}
	}
	if certificateError(err) {
		return &Permanent{Reason: UntrustedCertificate, Setting: caSetting(from), Err: err}
	}
	return nil
}

// IsPermanent reports whether Classify finds err permanent.
func IsPermanent(from Component, err error) bool { return Classify(from, err) != nil }

func certificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		unknownP *x509.UnknownAuthorityError
		hostP    *x509.HostnameError
		invalidP *x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &unknownP) || errors.As(err, &hostP) || errors.As(err, &invalidP)
}

func caSetting(from Component) string {
	switch from {
	case Postgres:
		return "the CA of DATABASE_URL (sslrootcert): PostgreSQL's certificate is not trusted"
	case LiteLLM:
		return "the CA trusted for LITELLM_URL (the job's CA bundle): LiteLLM's certificate is not trusted"
	case Kubernetes:
		return "the API server's CA (the ServiceAccount's ca.crt or the kubeconfig's certificate-authority): its certificate is not trusted"
	}
	return "the CA: a server's certificate is not trusted"
}
