package secrets

import (
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/redact"
)

// redactor removes known secret values from error messages: the project's one redactor (package
// redact, with its minimum length), filled from Secrets and plans.
type redactor struct {
	red redact.Redactor
}

func (r *redactor) add(vs ...string) { r.red.Add(vs...) }

func (r *redactor) addSecret(sec *kube.Secret) {
	if sec == nil {
		return
	}
	for _, v := range sec.Data {
		r.add(string(v))
	}
	for _, v := range sec.StringData {
		r.add(v)
	}
}

func (r *redactor) addPlan(p *Plan) {
	for _, sp := range p.Secrets {
		for _, v := range sp.Data {
			r.add(string(v))
		}
	}
}

// wrap returns err with every known value replaced in its message. errors.Is and errors.As still see
// the original chain.
func (r *redactor) wrap(err error) error { return r.red.Error(err) }
