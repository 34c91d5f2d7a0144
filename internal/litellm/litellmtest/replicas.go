package litellmtest

import (
	"slices"
	"time"
)

// table is the proxy's database (LiteLLM_ProxyModelTable, the virtual keys) plus the config-file
// models, shared by every replica of one deployment.
type table struct {
	rows     map[string]*row
	order    []string
	keys     map[string]virtualKey
	replicas []*Proxy
}

func (t *table) put(r *row) {
	if _, ok := t.rows[r.id]; !ok {
		t.order = append(t.order, r.id)
	}
	t.rows[r.id] = r
}

func (t *table) remove(id string) {
	delete(t.rows, id)
	if i := slices.Index(t.order, id); i >= 0 {
		t.order = slices.Delete(t.order, i, i+1)
	}
}

// dbModels counts the rows that live in the database (config-file models do not).
func (t *table) dbModels() int {
	n := 0
	for _, r := range t.rows {
		if !r.config {
			n++
		}
	}
	return n
}

// NewReplicas returns n proxies sharing one database, as n LiteLLM pods behind one Service. A write
// is seen at once only by the replica that answered it; the others see it after their next poll,
// which follows LiteLLM's rules (see Poll). n < 1 counts as 1.
func NewReplicas(opts Options, n int) []*Proxy {
	first := New(opts)
	out := []*Proxy{first}
	for i := 1; i < n; i++ {
		p := New(opts)
		p.mu, p.shared = first.mu, first.shared
		first.shared.replicas = append(first.shared.replicas, p)
		out = append(out, p)
	}
	return out
}

// Poll reloads the database the way LiteLLM's periodic poll does: ids new in the database are added,
// ids gone from it are removed (except when the database holds no model at all any more: LiteLLM
// then keeps what it has), and for the ids it already holds only litellm_params are refreshed.
// model_name and model_info stay as first loaded until a restart.
func (p *Proxy) Poll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pollLocked()
}

func (p *Proxy) pollLocked() {
	p.lastPoll = time.Now()
	for _, id := range p.shared.order {
		r := p.shared.rows[id]
		m, ok := p.mem[id]
		if !ok {
			p.addLocked(r)
			continue
		}
		m.params = deepCopy(r.params)
	}
	if p.shared.dbModels() == 0 {
		return
	}
	for _, id := range slices.Clone(p.memOrder) {
		if m := p.mem[id]; !m.config {
			if _, ok := p.shared.rows[id]; !ok {
				p.dropLocked(id)
			}
		}
	}
}

// pollDueLocked polls when the replica's interval has passed.
func (p *Proxy) pollDueLocked() {
	if p.pollInterval > 0 && time.Since(p.lastPoll) >= p.pollInterval {
		p.pollLocked()
	}
}

// loadLocked is the answering replica taking in its own write of id at once, all fields.
func (p *Proxy) loadLocked(id string) {
	r, ok := p.shared.rows[id]
	if !ok {
		p.dropLocked(id)
		return
	}
	if _, held := p.mem[id]; held {
		c := r.clone()
		p.mem[id] = &c
		return
	}
	p.addLocked(r)
}

// reloadLocked is a restart: everything loaded afresh, nothing hidden.
func (p *Proxy) reloadLocked() {
	p.mem, p.memOrder = map[string]*row{}, nil
	for _, id := range p.shared.order {
		p.addLocked(p.shared.rows[id])
	}
	p.lastPoll = time.Now()
}

func (p *Proxy) addLocked(r *row) {
	c := r.clone()
	c.hidden = false
	p.mem[r.id] = &c
	p.memOrder = append(p.memOrder, r.id)
}

func (p *Proxy) dropLocked(id string) {
	delete(p.mem, id)
	if i := slices.Index(p.memOrder, id); i >= 0 {
		p.memOrder = slices.Delete(p.memOrder, i, i+1)
	}
}
