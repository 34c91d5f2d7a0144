// Package modelsync holds the LiteMaaS backend's own model-sync rule: how the backend turns a LiteLLM
// deployment into a row of its `models` table, and when it decides that an existing row must be
// rewritten. The job writes rows that are a fixed point of that rule, so a backend restart (which
// always syncs) changes nothing the job wrote.
package modelsync

// Row is one row of the backend's `models` table, limited to the columns the job writes.
// Nullable columns are pointers; nil means SQL NULL.
type Row struct {
	ID                              string
	Name                            string
	Provider                        string
	Description                     *string
	Category                        *string
	ContextLength                   *int32
	MaxTokens                       *int32
	TPM                             *int32
	RPM                             *int32
	InputCostPerToken               *float64
	OutputCostPerToken              *float64
	SupportsVision                  bool
	SupportsFunctionCalling         bool
	SupportsToolChoice              bool
	SupportsParallelFunctionCalling bool
	SupportsStreaming               bool
	Features                        []string
	Availability                    string
	Version                         *string
	APIBase                         *string
	LiteLLMModelID                  *string
	BackendModelName                *string
	RestrictedAccess                bool
	// Metadata is the jsonb `metadata` column, already encoded. It never holds credentials.
	Metadata []byte
	// NullColumns lists, as read from the database, the boolean columns stored as NULL, which read as
	// their default: a plan rewrites them even where the default is the wanted value. Never written.
	NullColumns []string
}
