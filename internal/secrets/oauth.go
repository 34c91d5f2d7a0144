package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// OAuthClientResource is OpenShift's OAuthClient (cluster-scoped; its fields are at the top level).
var OAuthClientResource = schema.GroupVersionResource{Group: "oauth.openshift.io", Version: "v1", Resource: "oauthclients"}

// RedirectReferenceAnnotation makes a ServiceAccount an OAuth client whose redirect URI is the host of
// Route litemaas. The suffix after the last "." is a free name.
const (
	RedirectReferenceAnnotation = "serviceaccounts.openshift.io/oauth-redirectreference.litemaas"
	RedirectReferenceValue      = `{"kind":"OAuthRedirectReference","apiVersion":"v1","reference":{"kind":"Route","name":"litemaas"}}`
)

// clusterAdminHint tells what to do when the OAuthClient cannot be used.
const clusterAdminHint = "a cluster admin must create it and let this job update it, once per cluster: " +
	"`oc apply -k gitops/overlays/<cluster>/cluster` (gitops/cluster with the cluster's apps domain, including " +
	"gitops/cluster-rbac, the job's right to update the OAuthClient); or use OAUTH_MODE=serviceaccount " +
	"(component oauth-serviceaccount), which needs no cluster admin. " +
	"The Secrets were written; only the OAuthClient is not set, so logins fail until then"

// syncOAuthClient sets the OAuthClient's secret and its redirect URIs to exactly [CallbackURL], only
// when they differ. It returns the names of the fields it changed.
func (s *syncer) syncOAuthClient(ctx context.Context, secret string) ([]string, error) {
	name := s.o.OAuthClientName
	if s.c.Dynamic == nil {
		return nil, errors.New("oauthclient mode needs a dynamic client")
	}
	ri := s.c.Dynamic.Resource(OAuthClientResource)
	oc, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err) {
		return nil, fmt.Errorf("%w: OAuthClient %s: %s; %s", ErrOAuthClientUnavailable, name, reason(err), clusterAdminHint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading OAuthClient %s: %w", name, err)
	}
	patch := map[string]any{
		// Optimistic concurrency: the patch fails if the object changed since it was read.
		"metadata": map[string]any{"resourceVersion": oc.GetResourceVersion()},
	}
	var changes []string
	if cur, _, _ := unstructured.NestedString(oc.Object, "secret"); cur != secret {
		patch["secret"] = secret
		changes = append(changes, "secret")
	}
	want := []string{s.o.CallbackURL}
	if cur, _, _ := unstructured.NestedStringSlice(oc.Object, "redirectURIs"); !slices.Equal(cur, want) {
		patch["redirectURIs"] = want // a merge patch replaces the whole list
		changes = append(changes, "redirect")
	}
	if len(changes) == 0 {
		s.log.Info("oauthclient unchanged", "oauthClient", name)
		return nil, nil
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("encoding the OAuthClient patch: %w", err)
	}
	if _, err := ri.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("%w: OAuthClient %s: %s; %s", ErrOAuthClientUnavailable, name, reason(err), clusterAdminHint)
		}
		return nil, fmt.Errorf("updating OAuthClient %s: %w", name, err)
	}
	s.log.Info("oauthclient updated", "oauthClient", name, "fields", changes, "redirectURI", s.o.CallbackURL)
	return changes, nil
}

func reason(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "not found (or no OAuthClient API: not OpenShift?)"
	case apierrors.IsForbidden(err):
		return "forbidden to this job's ServiceAccount"
	}
	return err.Error()
}

// checkTokenSecret validates an existing token Secret: it must be a token of the ServiceAccount, or
// copying its token would hand the backend somebody else's credential.
func checkTokenSecret(sec *kube.Secret, name, serviceAccount string) []Problem {
	if sec == nil {
		return nil
	}
	if sec.Type != kube.SecretTypeServiceAccountToken || sec.Annotations[kube.ServiceAccountNameKey] != serviceAccount {
		return []Problem{{Secret: name, Message: fmt.Sprintf("is not a %s Secret of ServiceAccount %s; delete it and re-sync (the job re-creates it)",
			kube.SecretTypeServiceAccountToken, serviceAccount)}}
	}
	return nil
}

// ensureToken makes sure the OAuth ServiceAccount and its token Secret exist, and waits (at most
// TokenWait) until the token controller has written the token. It returns the token and what it
// created.
func (s *syncer) ensureToken(ctx context.Context, existing *kube.Secret) (string, []string, error) {
	var changes []string
	created, err := s.ensureServiceAccount(ctx)
	if created {
		changes = append(changes, "serviceaccount created")
	}
	if err != nil {
		return "", changes, err
	}
	if existing == nil {
		created, err := s.createTokenSecret(ctx)
		if created {
			changes = append(changes, "token secret created")
		}
		if err != nil {
			return "", changes, err
		}
	}
	token, err := s.waitForToken(ctx)
	return token, changes, err
}

// ensureServiceAccount creates the OAuth ServiceAccount when it is missing, and warns when an existing
// one lacks the redirect reference. It reports whether it created it.
func (s *syncer) ensureServiceAccount(ctx context.Context) (bool, error) {
	ns, saName := s.o.Namespace, s.o.ServiceAccount
	sas := kube.ServiceAccounts(s.c.Dynamic, ns)
	sa, err := sas.Get(ctx, saName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// On the first sync this PreSync job runs before Argo CD creates the ServiceAccount of the
		// component; Argo CD adopts the one created here.
		_, err = sas.Create(ctx, &kube.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name:        saName,
			Labels:      map[string]string{LabelPartOf: "litemaas", LabelManagedBy: ManagedBy},
			Annotations: map[string]string{RedirectReferenceAnnotation: RedirectReferenceValue},
		}}, metav1.CreateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			s.log.Info("serviceaccount created", "serviceAccount", saName)
			return true, nil
		case apierrors.IsAlreadyExists(err):
			return false, nil
		case apierrors.IsForbidden(err):
			return false, fmt.Errorf("ServiceAccount %s/%s does not exist and the job may not create it: "+
				"include the component gitops/components/oauth-serviceaccount, which declares it and grants the job `create`: %w", ns, saName, err)
		default:
			return false, fmt.Errorf("creating ServiceAccount %s/%s: %w", ns, saName, err)
		}
	case apierrors.IsForbidden(err):
		return false, fmt.Errorf("reading ServiceAccount %s/%s: the job needs `get` on it (Role litemaas-secrets): %w", ns, saName, err)
	case err != nil:
		return false, fmt.Errorf("reading ServiceAccount %s/%s: %w", ns, saName, err)
	}
	if _, ok := sa.Annotations[RedirectReferenceAnnotation]; !ok {
		s.log.Warn("ServiceAccount lacks the OAuth redirect reference annotation; logins fail until it has it (the component oauth-serviceaccount sets it)",
			"serviceAccount", saName, "annotation", RedirectReferenceAnnotation)
	}
	return false, nil
}

// createTokenSecret creates the ServiceAccount token Secret the token controller fills. It reports
// whether it created it; one created meanwhile by someone else is fine.
func (s *syncer) createTokenSecret(ctx context.Context) (bool, error) {
	ns, saName := s.o.Namespace, s.o.ServiceAccount
	_, err := kube.Secrets(s.c.Dynamic, ns).Create(ctx, &kube.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.o.TokenSecret,
			Labels:      map[string]string{LabelPartOf: "litemaas", LabelManagedBy: ManagedBy},
			Annotations: map[string]string{kube.ServiceAccountNameKey: saName},
		},
		Type: kube.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		s.log.Info("token secret created; waiting for the token controller", "secret", s.o.TokenSecret, "serviceAccount", saName)
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	default:
		return false, fmt.Errorf("creating token Secret %s/%s: %w", ns, s.o.TokenSecret, err)
	}
}

// waitForToken polls the token Secret until the token controller has written the token, for at most
// TokenWait. A timeout says what was last seen and where to look.
func (s *syncer) waitForToken(ctx context.Context) (string, error) {
	ns, saName := s.o.Namespace, s.o.ServiceAccount
	secrets := kube.Secrets(s.c.Dynamic, ns)
	var token string
	var last error
	err := wait.PollUntilContextTimeout(ctx, s.o.PollInterval, s.o.TokenWait, true, func(ctx context.Context) (bool, error) {
		sec, err := secrets.Get(ctx, s.o.TokenSecret, metav1.GetOptions{})
		if err != nil {
			last = err
			if apierrors.IsForbidden(err) {
				return false, err
			}
			return false, nil // not found yet, or a transient error: keep waiting
		}
		if p := checkTokenSecret(sec, s.o.TokenSecret, saName); len(p) > 0 {
			return false, fmt.Errorf("%s", p[0])
		}
		token = string(sec.Data[kube.ServiceAccountTokenKey])
		return token != "", nil
	})
	if err == nil {
		return token, nil
	}
	if wait.Interrupted(err) {
		detail := "the token is still empty"
		if last != nil {
			detail = "last error: " + last.Error()
		}
		return "", fmt.Errorf("%w: Secret %s/%s got no token within %s (%s). The token controller of the "+
			"controller-manager fills it; it deletes a token Secret whose ServiceAccount is missing or was re-created. "+
			"Check `oc describe secret %s -n %s`; the next sync retries",
			ErrTokenTimeout, ns, s.o.TokenSecret, s.o.TokenWait.Round(time.Second), detail, s.o.TokenSecret, ns)
	}
	return "", fmt.Errorf("waiting for the token of Secret %s/%s: %w", ns, s.o.TokenSecret, err)
}
