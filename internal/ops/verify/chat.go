package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// ChatOptions configure ChatCheck: one short completion per served catalog model through LiteLLM's
// public route, the runbook's "Test via API", with a virtual key made for the check and deleted after.
type ChatOptions struct {
	// BaseURL is LiteLLM's public URL (the Route litellm).
	BaseURL string
	// MasterKey creates and deletes the virtual key; it never makes a completion itself.
	MasterKey string
	// Models are the public model names to try.
	Models []string
	// Timeout bounds each completion (default 60 s: a cold model may take a while).
	Timeout    time.Duration
	HTTPClient *http.Client
}

// ChatResult is one model's answer.
type ChatResult struct {
	Model   string
	Status  int // HTTP status; 0 when no answer came
	Latency time.Duration
	// Message is LiteLLM's error message, or the start of the model's reply.
	Message string
}

// OK reports whether the model answered.
func (r ChatResult) OK() bool { return r.Status == http.StatusOK }

// ChatCheck makes the virtual key, sends one completion per model and deletes the key, also when a
// completion failed. An error means the check itself could not run (no key, route unreachable).
func ChatCheck(ctx context.Context, o ChatOptions) (results []ChatResult, err error) {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	base := strings.TrimRight(o.BaseURL, "/")
	var gen struct {
		Key string `json:"key"`
	}
	// The key may use only the models checked, and expires by itself should the delete never run.
	status, body, err := postJSON(ctx, o.HTTPClient, base+"/key/generate", o.MasterKey, map[string]any{
		"models": o.Models, "duration": "15m", "key_alias": fmt.Sprintf("litemaas-ops-verify-%d", time.Now().Unix()),
		"metadata": map[string]string{"purpose": "litemaas-ops verify --chat"},
	}, 30*time.Second)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d: %s", status, liteLLMMessage(body))
	}
	if err == nil {
		if err = json.Unmarshal(body, &gen); err == nil && gen.Key == "" {
			err = errors.New("the answer has no key")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating a LiteLLM virtual key with the master key (POST %s/key/generate): %w", base, err)
	}
	defer func() {
		// Deleted with a context of its own: a cancelled check still removes its key.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		status, body, derr := postJSON(dctx, o.HTTPClient, base+"/key/delete", o.MasterKey, map[string]any{"keys": []string{gen.Key}}, 30*time.Second)
		if derr == nil && status != http.StatusOK {
			derr = fmt.Errorf("status %d: %s", status, liteLLMMessage(body))
		}
		if derr != nil && err == nil {
			err = fmt.Errorf("deleting the virtual key verify made (it expires within 15 minutes anyway): %w", derr)
		}
	}()

	results = make([]ChatResult, 0, len(o.Models))
	for _, m := range o.Models {
		start := time.Now()
		status, body, cerr := postJSON(ctx, o.HTTPClient, base+"/v1/chat/completions", gen.Key, map[string]any{
			"model": m, "max_tokens": 16,
			"messages": []map[string]string{{"role": "user", "content": "Reply with the single word OK."}},
		}, o.Timeout)
		r := ChatResult{Model: m, Status: status, Latency: time.Since(start)}
		switch {
		case cerr != nil:
			r.Message = cerr.Error()
		case status == http.StatusOK:
			r.Message = reply(body)
		default:
			r.Message = liteLLMMessage(body)
		}
		results = append(results, r)
	}
	return results, err
}

// chatRows runs ChatCheck for the served models of the catalog, through the Route litellm with the
// master key of Secret litellm-secret, and turns the results into verify's rows.
func chatRows(ctx context.Context, c *cluster.Cluster, ns, catalogPath string, client *http.Client) ([]report.Row, error) {
	cat, err := catalog.Load(catalogPath)
	if err != nil {
		return nil, err
	}
	var models []string
	for _, m := range cat.Models {
		if m.Served() {
			models = append(models, m.ID)
		}
	}
	base := c.RouteURLs(ctx, ns)["litellm"]
	if base == "" {
		return []report.Row{{Component: "chat", Check: "route litellm", Status: report.StatusFail, Detail: "no Route litellm with a host in " + ns + ": --chat goes through LiteLLM's public route"}}, nil
	}
	sec, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, "litellm-secret", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading LiteLLM's master key (Secret %s/litellm-secret) for --chat: %w", ns, err)
	}
	results, err := ChatCheck(ctx, ChatOptions{BaseURL: base, MasterKey: string(sec.Data["LITELLM_MASTER_KEY"]), Models: models, HTTPClient: client})
	if err != nil && results == nil {
		return []report.Row{{Component: "chat", Check: "virtual key", Status: report.StatusFail, Detail: err.Error()}}, nil
	}
	rows := ChatRows(results)
	if err != nil {
		rows = append(rows, report.Row{Component: "chat", Check: "virtual key", Status: report.StatusWarn, Detail: err.Error()})
	}
	return rows, nil
}

// ChatRows are verify's rows for chat results: component chat, the model, its status and latency.
func ChatRows(results []ChatResult) []report.Row {
	rows := make([]report.Row, 0, len(results))
	for _, r := range results {
		st := report.StatusOK
		detail := fmt.Sprintf("HTTP %d in %s: %s", r.Status, latency(r.Latency), r.Message)
		if !r.OK() {
			st = report.StatusFail
			if r.Status == 0 {
				detail = fmt.Sprintf("no answer after %s: %s", latency(r.Latency), r.Message)
			}
		}
		rows = append(rows, report.Row{Component: "chat", Check: r.Model, Status: st, Detail: detail})
	}
	return rows
}

// PrintChatTable writes the results as a table of model, status and latency, and returns an error
// naming every model that failed with LiteLLM's message.
func PrintChatTable(w io.Writer, results []ChatResult) error {
	out := make([][]string, 0, len(results))
	var failed []string
	for _, r := range results {
		status := "OK"
		if !r.OK() {
			status = fmt.Sprintf("FAIL %d", r.Status)
			failed = append(failed, fmt.Sprintf("%s: %s", r.Model, r.Message))
		}
		out = append(out, []string{r.Model, status, latency(r.Latency), r.Message})
	}
	report.PrintTable(w, []string{"MODEL", "STATUS", "LATENCY", "ANSWER"}, out)
	if len(failed) > 0 {
		return fmt.Errorf("chat: %d of %d models failed:\n  %s", len(failed), len(results), strings.Join(failed, "\n  "))
	}
	return nil
}

// latency prints milliseconds with one decimal: local answers take well under one.
func latency(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func postJSON(ctx context.Context, client *http.Client, url, key string, in any, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := json.Marshal(in)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, redactKey(err, key)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, redactKey(err, key)
	}
	return resp.StatusCode, []byte(strings.ReplaceAll(string(body), key, "[REDACTED]")), nil
}

func redactKey(err error, key string) error {
	if key == "" || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "[REDACTED]"))
}

// liteLLMMessage is the message of either of LiteLLM's error shapes, else the body itself.
func liteLLMMessage(body []byte) string {
	var e struct {
		Error  *struct{ Message string } `json:"error"`
		Detail any                       `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		if e.Error != nil && e.Error.Message != "" {
			return oneLine(e.Error.Message)
		}
		switch d := e.Detail.(type) {
		case string:
			return d
		case map[string]any:
			if s, ok := d["error"].(string); ok {
				return oneLine(s)
			}
		}
	}
	return oneLine(string(body))
}

func reply(body []byte) string {
	var r struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Choices) == 0 {
		return "(answer without choices)"
	}
	return oneLine(r.Choices[0].Message.Content)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
