// Package litellmtest is an in-memory double of the LiteLLM proxy's model admin API, faithful to
// LiteLLM v1.74.7 (the default) and v1.81 behaviour, quirks included, with switches for the failures
// a client must survive: injected status codes, delays, read-after-write lag between replicas, a
// create that fails after saving, a missing or failing database, and (through Server) a proxy that is
// down and comes back on the same address.
//
// Proxy is an http.Handler; use it with httptest (NewTestServer) or as a standalone server.
// Every method is safe for concurrent use.
package litellmtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

// Supported LiteLLM versions.
const (
	// Version1747 is the runbook's image: an empty proxy answers /model/info with a 500,
	// /v2/model/info is not paginated, and PATCH hides config-file models until restart.
	Version1747 = "1.74.7"
	// Version181 is LiteMaaS 0.4.0's fork: an empty proxy answers an empty list and
	// /v2/model/info is paginated.
	Version181 = "1.81"
)

// DBState is the state of the proxy's database.
type DBState string

const (
	// DBConnected is a working database (the zero value of Options.DB means this too).
	DBConnected DBState = "connected"
	// DBFailing is a configured database that does not answer: readiness 503, writes 500.
	DBFailing DBState = "failing"
	// DBNone is a proxy started without DATABASE_URL: readiness says "Not connected", writes 500.
	DBNone DBState = "none"
)

// Options configure a Proxy. The zero value plus a MasterKey is a healthy v1.74.7 proxy.
type Options struct {
	MasterKey string
	// Version is Version1747 (default when empty) or Version181 (any "1.81.x" is accepted).
	Version string
	// DB defaults to DBConnected.
	DB DBState
	// DisableStoreModelInDB simulates STORE_MODEL_IN_DB unset: every model write answers 500.
	DisableStoreModelInDB bool
	// Delay is added to every request; WriteDelay is added on top to model writes, as LiteLLM
	// encrypts and writes to its database.
	Delay, WriteDelay time.Duration
	// ReadLag and ReadLagReads make model reads after a write return the state before the write, as
	// another replica would until its next database poll; see SetReadLag.
	ReadLag      time.Duration
	ReadLagReads int
	// PollInterval is how often a replica reloads the database when it is not the one written to
	// (LiteLLM polls every 10 s in v1.74.7, 30 s from v1.79.1). The poll runs lazily, before a
	// request, once the interval has passed; 0 means only an explicit Poll reloads.
	PollInterval time.Duration
	// Upstream is the HTTP client the data path calls model servers with (default: 60 s timeout).
	Upstream *http.Client
	// OpenAIAPIKey stands for the proxy's OPENAI_API_KEY variable: LiteLLM's OpenAI client falls back to
	// it when a deployment has no api_key. Empty, as in a LiteMaaS deployment.
	OpenAIAPIKey string
}

// Fault makes requests fail before the proxy looks at them, as a load balancer, an overloaded worker
// or a crashing pod would.
type Fault struct {
	// Method and Path (without query) restrict the fault; empty matches any.
	Method, Path string
	// Status is the answer's status code; 0 means 500.
	Status int
	// Body replaces the default LiteLLM-shaped error body when not empty.
	Body string
	// RetryAfter is sent as Retry-After (whole seconds, rounded up); a 429 gets 1 s when unset.
	RetryAfter time.Duration
	// Times is how many matching requests fail; 0 means 1.
	Times int
}

// Proxy is the double. Create it with New.
type Proxy struct {
	masterKey string
	version   string
	modern    bool

	// mu is shared by the replicas of one table (see NewReplicas).
	mu *sync.Mutex
	// shared is the database every replica reads and writes.
	shared *table
	// mem is what this replica's router holds: the rows as it last loaded them, in load order.
	mem          map[string]*row
	memOrder     []string
	pollInterval time.Duration
	lastPoll     time.Time
	upstream     *http.Client
	openAIKey    string
	chats        int
	db           DBState
	storeInDB    bool
	delay        time.Duration
	writeDelay   time.Duration
	readLag      time.Duration
	readLagReads int
	// stale is what a lagging replica serves; nil when reads see the current state.
	stale          []row
	staleUntil     time.Time
	staleReadsLeft int
	faults         []*Fault
	saveOnFailure  int
	requests       int
	writes         int
	counts         map[string]int
}

// row is one LiteLLM_ProxyModelTable row, kept in clear.
type row struct {
	id        string
	name      string
	params    map[string]any
	info      map[string]any
	createdAt time.Time
	updatedAt time.Time
	// config marks a model from the config file rather than the database (seeded with
	// model_info.db_model false): listed, but unknown to the database endpoints.
	config bool
	// hidden is the v1.74.7 PATCH bug: config models vanish from the worker until restart.
	hidden bool
}

// New returns an empty proxy. It panics on an unknown Options.Version.
func New(opts Options) *Proxy {
	p := &Proxy{
		masterKey:    opts.MasterKey,
		mu:           &sync.Mutex{},
		shared:       &table{rows: map[string]*row{}, keys: map[string]virtualKey{}},
		mem:          map[string]*row{},
		pollInterval: opts.PollInterval,
		upstream:     opts.Upstream,
		openAIKey:    opts.OpenAIAPIKey,
		db:           opts.DB,
		storeInDB:    !opts.DisableStoreModelInDB,
		delay:        opts.Delay,
		writeDelay:   opts.WriteDelay,
		readLag:      opts.ReadLag,
		readLagReads: opts.ReadLagReads,
		counts:       map[string]int{},
	}
	switch {
	case opts.Version == "" || opts.Version == Version1747:
		p.version = Version1747
	case opts.Version == Version181 || strings.HasPrefix(opts.Version, Version181+"."):
		p.version, p.modern = opts.Version, true
	default:
		panic(fmt.Sprintf("litellmtest: unsupported version %q (want %q or %q)", opts.Version, Version1747, Version181))
	}
	if p.db == "" {
		p.db = DBConnected
	}
	if p.upstream == nil {
		p.upstream = &http.Client{Timeout: 60 * time.Second}
	}
	p.shared.replicas = []*Proxy{p}
	return p
}

// NewTestServer starts p on an httptest server closed at the end of the test.
func NewTestServer(t testing.TB, opts Options) (*Proxy, *httptest.Server) {
	t.Helper()
	p := New(opts)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// ---- switches ----

// SetDB changes the database state. Unlike LiteLLM, readiness reflects it at once (LiteLLM caches
// its db check for about two minutes).
func (p *Proxy) SetDB(state DBState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if state == "" {
		state = DBConnected
	}
	p.db = state
}

// SetStoreModelInDB simulates STORE_MODEL_IN_DB on or off.
func (p *Proxy) SetStoreModelInDB(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.storeInDB = on
}

// SetDelay sets the delay added to every request; a request whose client gives up stops waiting.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// SetWriteDelay sets the extra delay of model writes. The write is committed after the delay even if
// the client has gone, as a real proxy finishes a write its caller timed out on.
func (p *Proxy) SetWriteDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeDelay = d
}

// SetReadLag simulates reads answered by a replica that has not polled the database since the last
// write: after each write, model reads (/model/info, /v1 and /v2, with or without litellm_model_id)
// return the state as it was before the lagging window opened, until d has passed or reads reads have
// been served, whichever ends first (a zero value disables that limit; both zero disables the lag).
// A write during the window keeps the old view and restarts the window.
func (p *Proxy) SetReadLag(d time.Duration, reads int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readLag, p.readLagReads = d, reads
	p.stale = nil
}

// SaveOnCreateFailure makes the next n successful POST /model/new save the row and still answer
// 500, as in LiteLLM issue #38556.
func (p *Proxy) SaveOnCreateFailure(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.saveOnFailure = n
}

// InjectFault queues a fault. Faults are consulted in order; the first matching one answers.
func (p *Proxy) InjectFault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &f)
}

// FailNext makes the next n requests, whatever they are, answer status.
func (p *Proxy) FailNext(n, status int) {
	p.InjectFault(Fault{Status: status, Times: n})
}

// ClearFaults drops every pending fault.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Restart simulates a proxy restart that keeps its database: config-file models hidden by the
// v1.74.7 PATCH bug come back and no replica lags any more. Server.Start calls it.
func (p *Proxy) Restart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reloadLocked()
	p.stale = nil
}

// ---- inspection ----

// Seed stores deployments as they are, generating model_info.id when absent and replacing rows with
// the same id. A deployment with model_info.db_model == false is a config-file model.
// Seeding neither counts as a request nor opens a read-lag window.
func (p *Proxy) Seed(ds ...litellm.Deployment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now().UTC()
	for _, d := range ds {
		d = normalize(d)
		info := deepCopy(d.ModelInfo)
		id := d.ID()
		if id == "" {
			id = newUUID()
		}
		info["id"] = id
		r := &row{
			id: id, name: d.ModelName, params: deepCopy(d.LiteLLMParams), info: info,
			createdAt: now, updatedAt: now, config: info["db_model"] == false,
		}
		p.shared.put(r)
		for _, rep := range p.shared.replicas {
			rep.loadLocked(id)
		}
	}
}

// Deployments returns every row as stored, in creation order: litellm_params in clear with api_key,
// model_info without the fields the proxy adds on reads.
func (p *Proxy) Deployments() []litellm.Deployment {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]litellm.Deployment, 0, len(p.shared.order))
	for _, id := range p.shared.order {
		r := p.shared.rows[id]
		out = append(out, litellm.Deployment{ModelName: r.name, LiteLLMParams: deepCopy(r.params), ModelInfo: deepCopy(r.info)})
	}
	return out
}

// Requests is the number of requests received, failed ones included.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Writes is the number of model write requests received (POST /model/new, PATCH /model/{id}/update,
// POST /model/update, POST /model/delete), whatever their outcome.
func (p *Proxy) Writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes
}

// Count is the number of requests received for method and path (without query). PATCH requests count
// under their actual path, e.g. "/model/abc/update".
func (p *Proxy) Count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method+" "+path]
}

// Counts returns a copy of the per-"METHOD path" counters.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Reset zeroes the counters; models, switches and faults stay.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests, p.writes = 0, 0
	p.counts = map[string]int{}
}

// ---- HTTP ----

func isWrite(method, path string) bool {
	switch {
	case method == http.MethodPost && (path == "/model/new" || path == "/model/update" || path == "/model/delete"):
		return true
	case method == http.MethodPatch:
		_, ok := patchID(path)
		return ok
	}
	return false
}

// patchID extracts {id} from /model/{id}/update.
func patchID(escapedPath string) (string, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/model/")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "/update")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	id, err := url.PathUnescape(rest)
	return id, err == nil
}

// ServeHTTP counts the request, then applies the delay and any fault before routing and auth,
// because both stand for what happens in front of LiteLLM (network, load balancer, overload).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	write := isWrite(r.Method, r.URL.EscapedPath())

	p.mu.Lock()
	p.requests++
	p.counts[r.Method+" "+path]++
	if write {
		p.writes++
	}
	fault := p.takeFault(r.Method, path)
	delay, writeDelay := p.delay, p.writeDelay
	p.pollDueLocked()
	p.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil {
		writeFault(w, fault)
		return
	}
	p.route(w, r, write, writeDelay)
}

// takeFault must be called with p.mu held.
func (p *Proxy) takeFault(method, path string) *Fault {
	for i, f := range p.faults {
		if (f.Method != "" && f.Method != method) || (f.Path != "" && f.Path != path) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func writeFault(w http.ResponseWriter, f *Fault) {
	retry := f.RetryAfter
	if retry <= 0 && f.Status == http.StatusTooManyRequests {
		retry = time.Second
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	typ := "None"
	if f.Status == http.StatusTooManyRequests {
		typ = "throttling_error"
	}
	writeJSON(w, f.Status, errorBody(f.Status, typ, http.StatusText(f.Status)))
}

func (p *Proxy) route(w http.ResponseWriter, r *http.Request, write bool, writeDelay time.Duration) {
	type handler func(*http.Request) (int, any)
	var method string
	var h handler
	authed := true
	switch path := r.URL.Path; {
	case path == "/health/liveliness" || path == "/health/liveness":
		method, h, authed = http.MethodGet, p.liveness, false
	case path == "/health/readiness":
		method, h, authed = http.MethodGet, p.readiness, false
	case path == "/model/info" || path == "/v1/model/info":
		method, h = http.MethodGet, p.modelInfo
	case path == "/v2/model/info":
		method, h = http.MethodGet, p.modelInfoV2
	case path == "/model/new":
		method, h = http.MethodPost, p.create
	case path == "/model/update":
		method, h = http.MethodPost, p.update
	case path == "/model/delete":
		method, h = http.MethodPost, p.delete
	case path == "/key/generate":
		method, h = http.MethodPost, p.keyGenerate
	case path == "/key/delete":
		method, h = http.MethodPost, p.keyDelete
	case path == "/v1/chat/completions" || path == "/chat/completions":
		// Any valid key may chat; the handler checks it against the key's models.
		method, h, authed = http.MethodPost, p.chat, false
	default:
		if _, ok := patchID(r.URL.EscapedPath()); ok {
			method, h = http.MethodPatch, p.patch
		}
	}
	if h == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
		return
	}
	if r.Method != method {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	if authed {
		if status, body := p.authenticate(r); status != 0 {
			writeJSON(w, status, body)
			return
		}
	}
	if write && writeDelay > 0 {
		time.Sleep(writeDelay)
	}
	status, body := h(r)
	writeJSON(w, status, body)
}

// authenticate returns a non-zero status when the request must be rejected.
func (p *Proxy) authenticate(r *http.Request) (int, any) {
	key := r.Header.Get("x-litellm-api-key")
	if key == "" {
		authz := r.Header.Get("Authorization")
		if authz == "" {
			return http.StatusUnauthorized, errorBody(401, "auth_error", "Authentication Error, No api key passed in.")
		}
		k, ok := strings.CutPrefix(authz, "Bearer ")
		if !ok {
			// LiteLLM echoes what it got, which is why clients must redact error bodies.
			return http.StatusUnauthorized, errorBody(401, "auth_error",
				"Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix. Passed in: "+authz)
		}
		key = k
	}
	if p.masterKey == "" || key != p.masterKey {
		return http.StatusUnauthorized, errorBody(401, "auth_error",
			"Authentication Error, Invalid proxy server token passed. Received API Key = "+abbreviate(key)+", Key Hash (Token) =none. Unable to find token in cache or `LiteLLM_VerificationTokenTable`")
	}
	return 0, nil
}

func abbreviate(key string) string {
	if len(key) <= 4 {
		return "sk-..."
	}
	return "sk-..." + key[len(key)-4:]
}

// ---- health ----

func (p *Proxy) liveness(*http.Request) (int, any) { return http.StatusOK, "I'm alive!" }

func (p *Proxy) readiness(*http.Request) (int, any) {
	p.mu.Lock()
	db := p.db
	p.mu.Unlock()
	switch db {
	case DBFailing:
		return http.StatusServiceUnavailable, map[string]any{"detail": "Service Unhealthy (Can't reach database server)"}
	case DBNone:
		return http.StatusOK, map[string]any{"status": "healthy", "db": "Not connected"}
	}
	if p.modern {
		return http.StatusOK, map[string]any{"status": "healthy", "db": "connected"}
	}
	return http.StatusOK, map[string]any{
		"status": "connected", "db": "connected", "cache": nil, "litellm_version": p.version,
		"success_callbacks": []string{}, "use_aiohttp_transport": true,
		"last_updated": time.Now().UTC().Format(time.RFC3339Nano),
	}
}

// ---- reads ----

const notLoadedMsg = "LLM Model List not loaded in. Make sure you passed models in your config.yaml or on the LiteLLM Admin UI. - https://docs.litellm.ai/docs/proxy/configs"

// served returns the rows the answering worker knows, stale when a lag window is open. p.mu held.
func (p *Proxy) served() []row {
	if p.stale != nil {
		expired := p.readLag > 0 && !time.Now().Before(p.staleUntil)
		exhausted := p.readLagReads > 0 && p.staleReadsLeft <= 0
		if !expired && !exhausted {
			p.staleReadsLeft--
			return p.stale
		}
		p.stale = nil
	}
	return p.current()
}

// current returns copies of the visible rows in creation order. p.mu held.
func (p *Proxy) current() []row {
	out := make([]row, 0, len(p.memOrder))
	for _, id := range p.memOrder {
		if r := p.mem[id]; !r.hidden {
			out = append(out, r.clone())
		}
	}
	return out
}

func (p *Proxy) modelInfo(r *http.Request) (int, any) {
	p.mu.Lock()
	rows := p.served()
	p.mu.Unlock()
	if len(rows) == 0 && !p.modern {
		return http.StatusInternalServerError, detail(notLoadedMsg)
	}
	if id := r.URL.Query().Get("litellm_model_id"); id != "" {
		for _, rw := range rows {
			if rw.id == id {
				return http.StatusOK, map[string]any{"data": []any{rw.render()}}
			}
		}
		return http.StatusBadRequest, detail("Model id = " + id + " not found on litellm proxy")
	}
	data := make([]any, 0, len(rows))
	for _, rw := range rows {
		data = append(data, rw.render())
	}
	return http.StatusOK, map[string]any{"data": data}
}

// modelInfoV2 is the admin UI's endpoint: a plain list in v1.74.7, paginated in v1.81.
func (p *Proxy) modelInfoV2(r *http.Request) (int, any) {
	p.mu.Lock()
	rows := p.served()
	p.mu.Unlock()
	if !p.modern {
		data := make([]any, 0, len(rows))
		for _, rw := range rows {
			data = append(data, rw.render())
		}
		return http.StatusOK, map[string]any{"data": data}
	}
	page, size := 1, 50
	for name, dst := range map[string]*int{"page": &page, "size": &size} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
					"type": "greater_than_equal", "loc": []string{"query", name}, "msg": "Input should be greater than or equal to 1", "input": v,
				}}}
			}
			*dst = n
		}
	}
	total := len(rows)
	data := []any{}
	for i := (page - 1) * size; i < total && i < page*size; i++ {
		data = append(data, rows[i].render())
	}
	return http.StatusOK, map[string]any{
		"data": data, "total_count": total, "current_page": page,
		"total_pages": (total + size - 1) / size, "size": size,
	}
}

// render is a row as /model/info shows it: credentials removed, proxy fields added where absent.
func (r row) render() map[string]any {
	params := deepCopy(r.params)
	for _, k := range []string{"api_key", "vertex_credentials", "aws_access_key_id", "aws_secret_access_key"} {
		delete(params, k)
	}
	for k, v := range map[string]any{"use_in_pass_through": false, "use_litellm_proxy": false, "merge_reasoning_content_in_choices": false} {
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
	info := deepCopy(r.info)
	model, _ := r.params["model"].(string)
	provider, _ := r.params["custom_llm_provider"].(string)
	if provider == "" {
		provider, _, _ = strings.Cut(model, "/")
	}
	for k, v := range map[string]any{
		"id": r.id, "db_model": !r.config, "key": model, "litellm_provider": provider, "mode": "chat",
		"created_at": r.createdAt.Format(time.RFC3339Nano), "updated_at": r.updatedAt.Format(time.RFC3339Nano),
	} {
		if _, ok := info[k]; !ok {
			info[k] = v
		}
	}
	return map[string]any{"model_name": r.name, "litellm_params": params, "model_info": info}
}

// stored is a row as the database endpoints answer it: string params encrypted.
func (r row) stored() map[string]any {
	params := make(map[string]any, len(r.params))
	for k, v := range r.params {
		if s, ok := v.(string); ok {
			v = encrypt(s)
		}
		params[k] = deepCopyValue(v)
	}
	return map[string]any{
		"model_id": r.id, "model_name": r.name, "litellm_params": params, "model_info": deepCopy(r.info),
		"created_at": r.createdAt.Format(time.RFC3339Nano), "created_by": "default_user_id",
		"updated_at": r.updatedAt.Format(time.RFC3339Nano), "updated_by": "default_user_id",
	}
}

// encrypt stands in for LiteLLM's salted encryption: visibly different and never the same twice, so
// a caller cannot compare stored values with its own.
func encrypt(s string) string {
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	return base64.URLEncoding.EncodeToString(append(nonce, s...))
}

// ---- writes ----

const (
	noDBMsg          = "No DB Connected. Here's how to do it - https://docs.litellm.ai/docs/proxy/virtual_keys"
	storeModelMsg    = "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature."
	addFailedMsg     = "Failed to add model to db. Check your server logs for more details."
	dbUnreachableMsg = "Can't reach database server"
)

type deploymentBody struct {
	ModelName     *string        `json:"model_name"`
	LiteLLMParams map[string]any `json:"litellm_params"`
	ModelInfo     map[string]any `json:"model_info"`
}

func decodeBody(r *http.Request, v any) (int, any) {
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(v); err != nil {
		return http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
			"type": "json_invalid", "loc": []string{"body"}, "msg": "JSON decode error", "ctx": map[string]any{"error": err.Error()},
		}}}
	}
	return 0, nil
}

func missing(field string) (int, any) {
	return http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
		"type": "missing", "loc": []string{"body", field}, "msg": "Field required",
	}}}
}

// stringID reads model_info.id; ok is false when present but not a string.
func stringID(info map[string]any) (string, bool) {
	switch v := info["id"].(type) {
	case nil:
		return "", true
	case string:
		return v, true
	}
	return "", false
}

// dbWriteError answers what LiteLLM answers when it cannot write; p.mu held.
func (p *Proxy) dbWriteError(failMsg string) (int, any) {
	switch {
	case p.db == DBNone:
		return http.StatusInternalServerError, errorBody(500, "auth_error", noDBMsg)
	case !p.storeInDB:
		return http.StatusInternalServerError, errorBody(500, "auth_error", storeModelMsg)
	case p.db == DBFailing:
		return http.StatusInternalServerError, errorBody(500, "auth_error", failMsg)
	}
	return 0, nil
}

// beginWrite opens (or extends) the read-lag window before the state changes; p.mu held.
func (p *Proxy) beginWrite() {
	if p.readLag <= 0 && p.readLagReads <= 0 {
		return
	}
	if p.stale == nil {
		p.stale = p.current()
	}
	p.staleUntil = time.Now().Add(p.readLag)
	p.staleReadsLeft = p.readLagReads
}

func (p *Proxy) create(r *http.Request) (int, any) {
	var b deploymentBody
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}
	if b.ModelName == nil || *b.ModelName == "" {
		return missing("model_name")
	}
	if _, ok := b.LiteLLMParams["model"].(string); !ok {
		return missing("litellm_params.model")
	}
	id, ok := stringID(b.ModelInfo)
	if !ok {
		return http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
			"type": "string_type", "loc": []string{"body", "model_info", "id"}, "msg": "Input should be a valid string",
		}}}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if status, body := p.dbWriteError(addFailedMsg); status != 0 {
		return status, body
	}
	if id == "" {
		id = newUUID()
	}
	if _, exists := p.shared.rows[id]; exists {
		// The primary-key conflict is swallowed into LiteLLM's generic failure.
		return http.StatusInternalServerError, errorBody(500, "None", addFailedMsg)
	}
	p.beginWrite()
	info := deepCopy(b.ModelInfo)
	info["id"] = id
	now := time.Now().UTC()
	rw := &row{id: id, name: *b.ModelName, params: deepCopy(b.LiteLLMParams), info: info, createdAt: now, updatedAt: now}
	p.shared.put(rw)
	p.loadLocked(id)
	if p.saveOnFailure > 0 {
		p.saveOnFailure--
		return http.StatusInternalServerError, errorBody(500, "None", addFailedMsg)
	}
	return http.StatusOK, rw.stored()
}

// dbRow returns the database row id, or nil for unknown and config-file models; p.mu held.
func (p *Proxy) dbRow(id string) *row {
	if rw, ok := p.shared.rows[id]; ok && !rw.config {
		return rw
	}
	return nil
}

func (p *Proxy) patch(r *http.Request) (int, any) {
	id, _ := patchID(r.URL.EscapedPath())
	var b deploymentBody
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.db == DBNone:
		return http.StatusInternalServerError, detail("DB not connected. See https://docs.litellm.ai/docs/proxy/virtual_keys")
	case !p.storeInDB:
		return http.StatusInternalServerError, detail(storeModelMsg)
	case p.db == DBFailing:
		return http.StatusInternalServerError, detail(dbUnreachableMsg)
	}
	rw := p.dbRow(id)
	if rw == nil {
		return http.StatusNotFound, errorBody(404, "not_found_error", "Model with id="+id+" not found")
	}
	p.beginWrite()
	if b.ModelName != nil && *b.ModelName != "" {
		rw.name = *b.ModelName
	}
	mergeNonNull(rw.params, b.LiteLLMParams)
	mergeNonNull(rw.info, b.ModelInfo)
	rw.info["id"] = id
	rw.updatedAt = time.Now().UTC()
	p.loadLocked(id)
	if !p.modern {
		for _, other := range p.mem {
			if other.config {
				other.hidden = true
			}
		}
	}
	return http.StatusOK, rw.stored()
}

func (p *Proxy) update(r *http.Request) (int, any) {
	var b deploymentBody
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}
	id, _ := stringID(b.ModelInfo)

	p.mu.Lock()
	defer p.mu.Unlock()
	if status, body := p.dbWriteError(dbUnreachableMsg); status != 0 {
		return status, body
	}
	if id == "" {
		return http.StatusBadRequest, errorBody(400, "auth_error", "Authentication Error, model_info.id is required")
	}
	rw := p.dbRow(id)
	if rw == nil {
		return http.StatusBadRequest, errorBody(400, "auth_error", "Authentication Error, model not found")
	}
	p.beginWrite()
	// Only litellm_params: this endpoint ignores model_name and model_info.
	mergeNonNull(rw.params, b.LiteLLMParams)
	rw.updatedAt = time.Now().UTC()
	p.loadLocked(id)
	return http.StatusOK, rw.stored()
}

func (p *Proxy) delete(r *http.Request) (int, any) {
	var b struct {
		ID *string `json:"id"`
	}
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}
	if b.ID == nil {
		return missing("id")
	}
	id := *b.ID

	p.mu.Lock()
	defer p.mu.Unlock()
	if status, body := p.dbWriteError(dbUnreachableMsg); status != 0 {
		return status, body
	}
	if p.dbRow(id) == nil {
		return http.StatusBadRequest, errorBody(400, "auth_error", "Model with id="+id+" not found in db")
	}
	p.beginWrite()
	p.shared.remove(id)
	p.loadLocked(id)
	return http.StatusOK, map[string]any{"message": "Model: " + id + " deleted successfully"}
}

// ---- helpers ----

// errorBody is LiteLLM's ProxyException shape.
func errorBody(status int, typ, msg string) map[string]any {
	return map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": "None", "code": strconv.Itoa(status),
	}}
}

// detail is FastAPI's HTTPException shape as LiteLLM uses it.
func detail(msg string) map[string]any {
	return map[string]any{"detail": map[string]any{"error": msg}}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"encode error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// mergeNonNull is LiteLLM's PATCH merge: shallow, and a null leaves the key as it was.
func mergeNonNull(dst, src map[string]any) {
	for k, v := range src {
		if v != nil {
			dst[k] = deepCopyValue(v)
		}
	}
}

// normalize gives seeded values the types the API would store (float64 numbers, []any, ...), so that
// seeded and created rows compare alike.
func normalize(d litellm.Deployment) litellm.Deployment {
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("litellmtest: seed %q: %v", d.ModelName, err))
	}
	var out litellm.Deployment
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("litellmtest: seed %q: %v", d.ModelName, err))
	}
	return out
}

func (r row) clone() row {
	r.params = deepCopy(r.params)
	r.info = deepCopy(r.info)
	return r
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopy(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopyValue(e)
		}
		return out
	}
	return v
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
