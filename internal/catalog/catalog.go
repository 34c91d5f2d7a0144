// Package catalog parses and validates the models catalog: the one file users edit to add or change an
// LLM. Parsing is strict and reports every problem at once, each naming the file, line, model and field,
// because a catalog that is only partly right must never reach LiteLLM or the database.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	goyaml "github.com/goccy/go-yaml"
	goparser "github.com/goccy/go-yaml/parser"
	"gopkg.in/yaml.v3"
)

// Availability values the backend understands.
const (
	Available   = "available"
	Unavailable = "unavailable"
)

// DefaultProvider is the display label of a model whose catalog entry names none.
const DefaultProvider = "vLLM"

// Model is one catalog entry with its defaults applied.
type Model struct {
	ID                              string
	Name                            string
	Description                     string
	Category                        string
	Provider                        string
	ContextLength                   int
	SupportsStreaming               bool
	Availability                    string
	APIBase                         string
	Model                           string
	SupportsFunctionCalling         bool
	SupportsParallelFunctionCalling bool
	SupportsToolChoice              bool
	SupportsVision                  bool
	InputCostPerToken               float64
	OutputCostPerToken              float64
	TPM                             int
	RPM                             int
	RestrictedAccess                bool
	// APIKeyEnv names the environment variable that holds the model's API key. The key itself never
	// appears in the catalog: the Job exposes a Secret key under this name.
	APIKeyEnv string
	// Line is where the entry starts in the file, for messages about it.
	Line int
}

// Served reports whether LiteLLM should serve the model.
func (m Model) Served() bool { return m.Availability == Available }

// Catalog is a parsed, valid catalog.
type Catalog struct {
	File   string
	Models []Model
}

// IDs returns the model ids in catalog order.
func (c *Catalog) IDs() []string {
	ids := make([]string, len(c.Models))
	for i, m := range c.Models {
		ids[i] = m.ID
	}
	return ids
}

// Problem is one thing wrong with a catalog.
type Problem struct {
	Line int
	// Column is set for YAML syntax errors only.
	Column int
	Model  string // the model's id, or "#N" when it has none
	Field  string
	Msg    string
}

// Error is every problem found in one catalog file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: invalid models catalog (%d problem", e.File, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
			if p.Column > 0 {
				fmt.Fprintf(&b, ":%d", p.Column)
			}
		}
		b.WriteString(":")
		if p.Model != "" {
			fmt.Fprintf(&b, " model %s:", p.Model)
		}
		if p.Field != "" {
			fmt.Fprintf(&b, " field %s:", p.Field)
		}
		b.WriteString(" ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// IsInvalid reports whether err is (or wraps) a catalog validation error.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// The id becomes LiteLLM's model_name and the backend's models.id, and API keys are generated with it:
// a `/` breaks the backend's API-key model picker, so only a conservative set is allowed.
var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Column sizes of the backend's models table; longer values would fail the whole transaction.
const (
	maxID       = 255
	maxName     = 255
	maxProvider = 100
	maxCategory = 100
	maxAPIBase  = 500
	// decimal(15,10) holds values below 1e5 with ten decimals.
	maxCost = 99999
)

const maxFileSize = 4 << 20

// Parse validates data read from file (the name is only used in messages).
func Parse(file string, data []byte) (*Catalog, error) {
	p := &parser{file: file}
	if len(data) > maxFileSize {
		p.add(0, "", "", fmt.Sprintf("file is %d bytes; a catalog larger than %d bytes is refused", len(data), maxFileSize))
		return nil, p.err()
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		line, col, msg := syntaxError(data, err)
		p.problems = append(p.problems, Problem{Line: line, Column: col, Msg: "not valid YAML: " + msg})
		return nil, p.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "", "more than one YAML document; a catalog is a single document")
	}
	c := &Catalog{File: file}
	c.Models = p.document(&doc)
	if e := p.err(); e != nil {
		return nil, e
	}
	return c, nil
}

type parser struct {
	file     string
	problems []Problem
}

func (p *parser) add(line int, model, field, msg string) {
	p.problems = append(p.problems, Problem{Line: line, Model: model, Field: field, Msg: msg})
}

func (p *parser) err() error {
	if len(p.problems) == 0 {
		return nil
	}
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	return &Error{File: p.file, Problems: p.problems}
}

func (p *parser) document(doc *yaml.Node) []Model {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.add(0, "", "models", "the file is empty; expected a top-level `models:` list")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "", "expected a mapping with a top-level `models:` list")
		return nil
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "models":
			if list != nil {
				p.add(k.Line, "", "models", "appears twice")
				continue
			}
			list = v
		default:
			p.add(k.Line, "", k.Value, "unknown top-level field; the catalog has only `models`")
		}
	}
	if list == nil {
		p.add(root.Line, "", "models", "missing; expected a top-level `models:` list")
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		p.add(list.Line, "", "models", "must be a list of models")
		return nil
	}
	if len(list.Content) == 0 {
		// An empty LiteLLM makes the backend mark every model unavailable and deactivate every
		// subscription at its next sync: an empty catalog is almost certainly a mistake.
		p.add(list.Line, "", "models", "the list is empty; a catalog must list at least one model")
		return nil
	}
	models := make([]Model, 0, len(list.Content))
	seen := map[string]int{}
	for i, item := range list.Content {
		m, ok := p.model(i, item)
		if !ok {
			continue
		}
		if first, dup := seen[m.ID]; dup {
			p.add(m.Line, m.ID, "id", fmt.Sprintf("duplicate id; already used by the model at line %d", first))
			continue
		}
		seen[m.ID] = m.Line
		models = append(models, m)
	}
	return models
}

// model decodes one entry. It reports problems and returns ok=false when the entry is unusable.
func (p *parser) model(index int, n *yaml.Node) (Model, bool) {
	ref := fmt.Sprintf("#%d", index+1)
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, ref, "", "each model must be a mapping of fields")
		return Model{}, false
	}
	before := len(p.problems)
	m := Model{
		Line:              n.Line,
		Provider:          DefaultProvider,
		SupportsStreaming: true,
		Availability:      Available,
	}
	// The id names the model in every later message, so find it first.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
			if id := n.Content[i+1].Value; id != "" {
				ref = id
			}
		}
	}
	has := p.fields(n, &m, ref)
	line := n.Line
	if !has.id {
		p.add(line, ref, "id", "required")
	}
	if !has.name {
		p.add(line, ref, "name", "required")
	}
	if !has.contextLength {
		p.add(line, ref, "contextLength", "required")
	}
	if !has.apiBase {
		p.add(line, ref, "apiBase", "required")
	}
	if m.Model == "" && m.ID != "" {
		m.Model = "openai/" + m.ID
	}
	p.check(n, &m, ref, has.contextDecoded)
	return m, len(p.problems) == before
}

// present says which required fields an entry has.
type present struct {
	id, name, contextLength, apiBase bool
	// contextDecoded: contextLength is an integer, so its range is worth checking (one problem per field).
	contextDecoded bool
}

// fields decodes an entry's fields into m, reporting a field given twice, an unknown one (with a
// suggestion) and an inline API key.
func (p *parser) fields(n *yaml.Node, m *Model, ref string) present {
	f := fieldDecoder{p: p, model: ref}
	seen := map[string]bool{}
	var has present
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.add(k.Line, ref, k.Value, "appears twice in this model")
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "id":
			has.id = f.str(v, "id", &m.ID)
		case "name":
			has.name = f.str(v, "name", &m.Name)
		case "description":
			f.str(v, "description", &m.Description)
		case "category":
			f.str(v, "category", &m.Category)
		case "provider":
			f.str(v, "provider", &m.Provider)
		case "contextLength":
			has.contextLength = true
			has.contextDecoded = f.integer(v, "contextLength", &m.ContextLength)
		case "supportsStreaming":
			f.boolean(v, "supportsStreaming", &m.SupportsStreaming)
		case "availability":
			f.str(v, "availability", &m.Availability)
		case "apiBase":
			has.apiBase = f.str(v, "apiBase", &m.APIBase)
		case "model":
			f.str(v, "model", &m.Model)
		case "supportsFunctionCalling":
			f.boolean(v, k.Value, &m.SupportsFunctionCalling)
		case "supportsParallelFunctionCalling":
			f.boolean(v, k.Value, &m.SupportsParallelFunctionCalling)
		case "supportsToolChoice":
			f.boolean(v, k.Value, &m.SupportsToolChoice)
		case "supportsVision":
			f.boolean(v, k.Value, &m.SupportsVision)
		case "inputCostPerToken":
			f.number(v, k.Value, &m.InputCostPerToken)
		case "outputCostPerToken":
			f.number(v, k.Value, &m.OutputCostPerToken)
		case "tpm":
			f.integer(v, k.Value, &m.TPM)
		case "rpm":
			f.integer(v, k.Value, &m.RPM)
		case "restrictedAccess":
			f.boolean(v, k.Value, &m.RestrictedAccess)
		case "apiKeyEnv":
			f.str(v, k.Value, &m.APIKeyEnv)
		case "apiKey", "api_key":
			p.add(k.Line, ref, k.Value, "inline API keys are not allowed in git: put the key in a Secret, expose it to the job as an environment variable and name that variable in `apiKeyEnv`")
		default:
			p.add(k.Line, ref, k.Value, "unknown field"+suggest(k.Value))
		}
	}
	return has
}

// check validates values; lines point at the field when it is present, else at the model.
func (p *parser) check(n *yaml.Node, m *Model, ref string, contextDecoded bool) {
	at := func(field string) int {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == field {
				return n.Content[i+1].Line
			}
		}
		return n.Line
	}
	if m.ID != "" {
		switch {
		case len(m.ID) > maxID:
			p.add(at("id"), ref, "id", fmt.Sprintf("longer than %d characters", maxID))
		case strings.Contains(m.ID, "/"):
			p.add(at("id"), ref, "id", "must not contain `/`: the backend's API-key model picker breaks on it; put the served model path in `model` instead")
		case !idPattern.MatchString(m.ID):
			p.add(at("id"), ref, "id", "use lowercase letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit")
		}
	}
	if len(m.Name) > maxName {
		p.add(at("name"), ref, "name", fmt.Sprintf("longer than %d characters", maxName))
	}
	if m.Provider == "" || len(m.Provider) > maxProvider {
		p.add(at("provider"), ref, "provider", fmt.Sprintf("must be 1 to %d characters", maxProvider))
	}
	if len(m.Category) > maxCategory {
		p.add(at("category"), ref, "category", fmt.Sprintf("longer than %d characters", maxCategory))
	}
	if contextDecoded && (m.ContextLength <= 0 || m.ContextLength > math.MaxInt32) {
		p.add(at("contextLength"), ref, "contextLength", "must be a positive integer (tokens)")
	}
	if m.Availability != Available && m.Availability != Unavailable {
		p.add(at("availability"), ref, "availability", fmt.Sprintf("must be %q or %q, got %q", Available, Unavailable, m.Availability))
	}
	if !m.SupportsStreaming && m.Availability == Available {
		p.add(at("supportsStreaming"), ref, "supportsStreaming", "false cannot hold for a served model: the backend's model sync sets supports_streaming=true for every model LiteLLM serves; remove the field or mark the model unavailable")
	}
	if _, set := fieldNode(n, "apiBase"); set {
		if msg := checkURL(m.APIBase); msg != "" {
			p.add(at("apiBase"), ref, "apiBase", msg)
		}
	}
	if m.Model != "" {
		prefix, served, ok := strings.Cut(m.Model, "/")
		if !ok || prefix == "" || served == "" || strings.ContainsAny(m.Model, " \t\n") {
			p.add(at("model"), ref, "model", fmt.Sprintf("must be `<provider>/<served model name>` as LiteLLM expects (e.g. openai/%s), got %q", orDefault(m.ID, "my-model"), m.Model))
		}
	}
	for _, c := range []struct {
		field string
		v     float64
	}{{"inputCostPerToken", m.InputCostPerToken}, {"outputCostPerToken", m.OutputCostPerToken}} {
		if c.v < 0 || c.v > maxCost || math.IsNaN(c.v) || math.IsInf(c.v, 0) {
			p.add(at(c.field), ref, c.field, fmt.Sprintf("must be a number from 0 to %d (cost per token)", maxCost))
		} else if v, set := fieldNode(n, c.field); set && !atMostDecimals(v.Value, CostDecimals) {
			p.add(at(c.field), ref, c.field, fmt.Sprintf("%s has more than %d decimal places: the database column is decimal(15,%d) and would round it, so the stored value would never match the catalog; round it", v.Value, CostDecimals, CostDecimals))
		}
	}
	for _, c := range []struct {
		field string
		v     int
	}{{"tpm", m.TPM}, {"rpm", m.RPM}} {
		if c.v < 0 || c.v > math.MaxInt32 {
			p.add(at(c.field), ref, c.field, "must be a non-negative integer (0 or absent means no limit)")
		}
	}
	if m.APIKeyEnv != "" && !envNamePattern.MatchString(m.APIKeyEnv) {
		p.add(at("apiKeyEnv"), ref, "apiKeyEnv", fmt.Sprintf("%q is not an environment variable name", m.APIKeyEnv))
	}
}

// CostDecimals is the precision of the backend's cost columns (decimal(15,10)): a catalog cost has at
// most that many decimal places, so the stored value is exactly the catalog's.
const CostDecimals = 10

// atMostDecimals reports whether the number written as text (e.g. 0.0000015, 1.5e-7) has at most n
// decimal places. Text that is not a plain number is left to the other checks.
func atMostDecimals(text string, n int) bool {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(text))
	if !ok {
		return true
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)))
	return scaled.IsInt()
}

func fieldNode(n *yaml.Node, field string) (*yaml.Node, bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			return n.Content[i+1], true
		}
	}
	return nil, false
}

func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("must be an http:// or https:// URL, got %q", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Sprintf("has no host: %q", s)
	}
	if u.User != nil {
		return "must not carry credentials; use `apiKeyEnv` for the model's API key"
	}
	if len(s) > maxAPIBase {
		return fmt.Sprintf("longer than %d characters", maxAPIBase)
	}
	return ""
}

type fieldDecoder struct {
	p     *parser
	model string
}

func (f fieldDecoder) scalar(v *yaml.Node, field, want string) bool {
	if v.Kind != yaml.ScalarNode {
		f.p.add(v.Line, f.model, field, "must be "+want)
		return false
	}
	return true
}

func (f fieldDecoder) str(v *yaml.Node, field string, dst *string) bool {
	if !f.scalar(v, field, "a string") {
		return false
	}
	if v.Tag == "!!null" {
		f.p.add(v.Line, f.model, field, "must not be empty")
		return false
	}
	s := strings.TrimSpace(v.Value)
	if s == "" {
		f.p.add(v.Line, f.model, field, "must not be empty")
		return false
	}
	*dst = s
	return true
}

func (f fieldDecoder) boolean(v *yaml.Node, field string, dst *bool) bool {
	if !f.scalar(v, field, "true or false") || v.Tag != "!!bool" {
		if v.Kind == yaml.ScalarNode {
			f.p.add(v.Line, f.model, field, fmt.Sprintf("must be true or false, got %q", v.Value))
		}
		return false
	}
	b, err := strconv.ParseBool(v.Value)
	if err != nil {
		// YAML 1.1 spellings such as "yes" are tagged !!bool by some writers but not parsed here.
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must be true or false, got %q", v.Value))
		return false
	}
	*dst = b
	return true
}

func (f fieldDecoder) integer(v *yaml.Node, field string, dst *int) bool {
	if !f.scalar(v, field, "an integer") {
		return false
	}
	if v.Tag != "!!int" {
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must be an integer, got %q", v.Value))
		return false
	}
	var n int64
	if err := v.Decode(&n); err != nil {
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must be an integer that fits in 32 bits, got %q", v.Value))
		return false
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must fit in 32 bits, got %q", v.Value))
		return false
	}
	*dst = int(n)
	return true
}

func (f fieldDecoder) number(v *yaml.Node, field string, dst *float64) bool {
	if !f.scalar(v, field, "a number") {
		return false
	}
	if v.Tag != "!!int" && v.Tag != "!!float" {
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must be a number, got %q", v.Value))
		return false
	}
	var x float64
	if err := v.Decode(&x); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		f.p.add(v.Line, f.model, field, fmt.Sprintf("must be a finite number, got %q", v.Value))
		return false
	}
	*dst = x
	return true
}

var knownFields = []string{
	"id", "name", "description", "category", "provider", "contextLength", "supportsStreaming",
	"availability", "apiBase", "model", "supportsFunctionCalling", "supportsParallelFunctionCalling",
	"supportsToolChoice", "supportsVision", "inputCostPerToken", "outputCostPerToken", "tpm", "rpm",
	"restrictedAccess", "apiKeyEnv",
}

// suggest names the known field an unknown one most likely meant (a case or snake_case slip).
func suggest(field string) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	for _, k := range knownFields {
		if norm(k) == norm(field) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// syntaxError says where a YAML syntax error is. yaml.v3 reports the line where the enclosing block
// starts (its context mark), often line 1 for an indentation slip further down, and no column; the
// goccy/go-yaml parser reports the offending token's line and column, so its position is used when it
// finds the error too.
func syntaxError(data []byte, err error) (line, col int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0])
	}
	_, perr := goparser.ParseBytes(data, 0)
	var se *goyaml.SyntaxError
	if errors.As(perr, &se) && se.Token != nil && se.Token.Position != nil {
		return se.Token.Position.Line, se.Token.Position.Column, se.Message
	}
	return line, 0, msg
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Load reads and validates a catalog file.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading models catalog: %w", err)
	}
	return Parse(path, data)
}
