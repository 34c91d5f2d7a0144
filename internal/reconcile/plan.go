package reconcile

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

// Action is what the job does to one LiteLLM deployment or database row.
type Action string

const (
	Create    Action = "create"
	Update    Action = "update"
	Replace   Action = "replace"
	Delete    Action = "delete"
	Unchanged Action = "unchanged"
	Keep      Action = "keep" // not in the catalog and left alone
	// Blocked: a deployment from LiteLLM's config file holds a catalog name. The admin API cannot
	// change or delete it (it is not in LiteLLM's database), so the model fails until it is removed there.
	Blocked         Action = "blocked"
	Insert          Action = "insert"
	MarkUnavailable Action = "unavailable"
)

// Step is one LiteLLM change.
type Step struct {
	Action Action
	Model  string // the catalog id (LiteLLM model_name)
	ID     string // the deployment id acted on; for Replace, the new one
	OldID  string // for Replace: the deployment removed once the new one exists
	Fields []string
	Reason string
	// first orders a delete before the model's create: only for a leftover that blocks the id a
	// replacement needs.
	first bool
	// want is the deployment to create or the values to PATCH.
	want litellm.Deployment
}

// litellmPlan is the LiteLLM half of a plan.
type litellmPlan struct {
	Steps []Step
	// chosen is the deployment each served catalog model ends with.
	chosen map[string]litellm.Deployment
	// pruned lists the model names removed because PRUNE is on.
	pruned []string
	// blocked holds, by catalog id, why a config-file deployment keeps the model from converging.
	blocked map[string]error
}

// fromConfigFile reports whether LiteLLM loaded d from its config file: /model/info says
// model_info.db_model false for those (true for the database's).
func fromConfigFile(d litellm.Deployment) bool {
	v, ok := d.ModelInfo["db_model"].(bool)
	return ok && !v
}

// blockedStep names a config-file deployment under a catalog name for what it is.
func blockedStep(model string, d litellm.Deployment, p *litellmPlan) Step {
	p.blocked[model] = fmt.Errorf("deployment %s is defined in LiteLLM's config file (model_list entry %q; /model/info says db_model false), which the admin API cannot change or delete: remove it from LiteLLM's config file, the catalog owns this name", d.ID(), model)
	return Step{Action: Blocked, Model: model, ID: d.ID(), Reason: "defined in LiteLLM's config file: remove it there"}
}

// planLiteLLM compares the catalog with what LiteLLM serves. The catalog owns every name it lists:
// after the plan there is exactly one deployment per served id (ours, with a deterministic id) and
// none for an unavailable one. Names not listed are left alone unless prune is set and the
// deployment carries our marker.
func planLiteLLM(c *catalog.Catalog, current []litellm.Deployment, keys map[string]string, masterKey string, prune bool) litellmPlan {
	byName := map[string][]litellm.Deployment{}
	for _, d := range current {
		byName[d.ModelName] = append(byName[d.ModelName], d)
	}
	p := litellmPlan{chosen: map[string]litellm.Deployment{}, blocked: map[string]error{}}
	listed := map[string]bool{}
	for _, m := range c.Models {
		listed[m.ID] = true
		group := byName[m.ID]
		if !m.Served() {
			for _, d := range group {
				if fromConfigFile(d) {
					p.Steps = append(p.Steps, blockedStep(m.ID, d, &p))
					continue
				}
				p.Steps = append(p.Steps, Step{Action: Delete, Model: m.ID, ID: d.ID(), Reason: "marked unavailable in the catalog"})
			}
			if len(group) == 0 {
				p.Steps = append(p.Steps, Step{Action: Unchanged, Model: m.ID, Reason: "unavailable, not served"})
			}
			continue
		}
		p.Steps = append(p.Steps, planModel(m, group, keys[m.ID], masterKey, &p)...)
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		if !listed[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, d := range byName[name] {
			owned := d.ModelInfo[keyManagedBy] == ManagedBy
			switch {
			case owned && prune:
				p.Steps = append(p.Steps, Step{Action: Delete, Model: name, ID: d.ID(), Reason: "no longer in the catalog, PRUNE=true"})
			case owned:
				p.Steps = append(p.Steps, Step{Action: Keep, Model: name, ID: d.ID(), Reason: "no longer in the catalog; set PRUNE=true to remove it"})
			}
		}
		if prune && ownedAny(byName[name]) {
			p.pruned = append(p.pruned, name)
		}
	}
	return p
}

func ownedAny(ds []litellm.Deployment) bool {
	for _, d := range ds {
		if d.ModelInfo[keyManagedBy] == ManagedBy {
			return true
		}
	}
	return false
}

func planModel(m catalog.Model, group []litellm.Deployment, apiKey, masterKey string, p *litellmPlan) []Step {
	ids := DeploymentIDs(m, apiKey, masterKey)
	present := map[string]bool{}
	keep := -1
	for i, d := range group {
		present[d.ID()] = true
		if keep < 0 && (d.ID() == ids[0] || d.ID() == ids[1]) && len(deploymentDiff(desiredDeployment(m, d.ID(), apiKey, masterKey), d)) == 0 {
			keep = i
		}
	}
	var steps []Step
	skip := map[string]bool{}
	if keep >= 0 {
		// Already right, e.g. after a run interrupted between the create and the delete.
		d := group[keep]
		p.chosen[m.ID] = desiredDeployment(m, d.ID(), apiKey, masterKey)
		steps = append(steps, Step{Action: Unchanged, Model: m.ID, ID: d.ID()})
		skip[d.ID()] = true
	} else {
		// A deployment holding the wanted id with other values was edited by hand: the other id is
		// used, and when both are held so, the second goes first while the first keeps serving.
		target := ids[0]
		if present[ids[0]] {
			target = ids[1]
			if present[ids[1]] {
				steps = append(steps, Step{Action: Delete, Model: m.ID, ID: target, Reason: "holds the new deployment's id with other values", first: true})
				skip[target] = true
			}
		}
		want := desiredDeployment(m, target, apiKey, masterKey)
		p.chosen[m.ID] = want
		// The deployment replaced is the job's own earlier one, when there is one.
		old := -1
		for i, d := range group {
			if d.ID() != target && d.ModelInfo[keyManagedBy] == ManagedBy && (old < 0 || d.ModelInfo[keyCatalogID] == m.ID) {
				old = i
			}
		}
		if old < 0 {
			steps = append(steps, Step{Action: Create, Model: m.ID, ID: target, want: want})
		} else {
			d := group[old]
			diff := deploymentDiff(desiredDeployment(m, d.ID(), apiKey, masterKey), d)
			steps = append(steps, Step{Action: Replace, Model: m.ID, ID: target, OldID: d.ID(), Fields: diff, want: want})
			skip[d.ID()] = true
		}
	}
	for _, d := range group {
		if skip[d.ID()] {
			continue
		}
		if fromConfigFile(d) {
			steps = append(steps, blockedStep(m.ID, d, p))
			continue
		}
		reason := "duplicate deployment of a catalog model"
		switch {
		case d.ModelInfo[keyManagedBy] != ManagedBy:
			reason = "not made by this job; the catalog owns this name"
		case d.ModelInfo[keyCatalogID] == m.ID:
			reason = "earlier version of this model, left by an interrupted run"
		}
		steps = append(steps, Step{Action: Delete, Model: m.ID, ID: d.ID(), Reason: reason})
	}
	return steps
}

// writes counts the steps that change LiteLLM.
func (p litellmPlan) writes() int {
	n := 0
	for _, s := range p.Steps {
		switch s.Action {
		case Create, Update, Delete:
			n++
		case Replace:
			n += 2
		}
	}
	return n
}

// RowChange is one database change of a plan.
type RowChange struct {
	Action Action
	Model  string
	Fields []string
}

// Plan is what a run does (or, in a dry run, would do).
type Plan struct {
	LiteLLM   []Step
	Database  []RowChange
	Migration string
}

// Print writes the plan as one line per model and action, the format the README documents.
func (p Plan) Print(w io.Writer) {
	for _, s := range p.LiteLLM {
		line := fmt.Sprintf("litellm   %-9s %s", s.Action, s.Model)
		if s.ID != "" {
			line += " deployment=" + s.ID
		}
		if s.OldID != "" {
			line += " replaces=" + s.OldID
		}
		if len(s.Fields) > 0 {
			line += " fields=" + strings.Join(s.Fields, ",")
		}
		if s.Reason != "" {
			line += " (" + s.Reason + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, r := range p.Database {
		line := fmt.Sprintf("database  %-9s %s", r.Action, r.Model)
		if len(r.Fields) > 0 {
			line += " fields=" + strings.Join(r.Fields, ",")
		}
		fmt.Fprintln(w, line)
	}
	if p.Migration != "" {
		fmt.Fprintf(w, "migration %s\n", p.Migration)
	}
}
