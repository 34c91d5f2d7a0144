package job

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
)

// ValidateOptions configure `litemaas-sync validate`.
type ValidateOptions struct {
	Files []string
}

// SetArgs takes the files from the command line.
func (o *ValidateOptions) SetArgs(args []string) error {
	o.Files = args
	return nil
}

// Run checks every file and reports every problem; it needs no cluster, database or LiteLLM.
func (o *ValidateOptions) Run(_ context.Context, out io.Writer) error {
	if len(o.Files) == 0 {
		return usageError("name at least one catalog file")
	}
	var errs []error
	for _, f := range o.Files {
		c, err := catalog.Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "%s: valid, %d models\n", f, len(c.Models))
	}
	if len(errs) > 0 {
		return invalid(errors.Join(errs...))
	}
	return nil
}
