package job

import (
	"errors"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
)

// Reasons the status ConfigMap and the Job's Event give for a run's end, besides fault's reasons
// for the errors no retry can fix.
const (
	ReasonSucceeded     = "Succeeded"
	ReasonFailed        = "Failed"
	ReasonInvalidConfig = "InvalidConfiguration"
	ReasonInvalidCatalg = "InvalidCatalog"
	ReasonNotReady      = "NotReady"
	ReasonStopped       = "Stopped"
)

// classify is the one place that turns a run's error into its exit code and reason. Its order
// matters: a signal wins (the run did not fail on its own), then what the error says it is, then
// what the chain holds.
func classify(err error) *ExitError {
	if err == nil {
		return &ExitError{Code: ExitOK, Reason: ReasonSucceeded}
	}
	var stopped *cli.StoppedError
	if errors.As(err, &stopped) {
		return &ExitError{Code: stopped.ExitCode(), Reason: ReasonStopped, Err: err}
	}
	out := &ExitError{Code: ExitFailed, Reason: ReasonFailed, Err: err}
	var ee *ExitError
	if errors.As(err, &ee) {
		c := *ee
		c.Err = err
		out = &c
	}
	var ce *catalog.Error
	if errors.As(err, &ce) {
		out.Code, out.Reason, out.File = ExitInvalid, ReasonInvalidCatalg, ce.File
		if len(ce.Problems) > 0 {
			out.Model, out.Field = ce.Problems[0].Model, ce.Problems[0].Field
		}
	}
	explicit := out.Reason != ReasonFailed && out.Reason != ""
	if p := fault.Classify(fault.Unknown, err); p != nil && !explicit {
		out.Code, out.Reason, out.Setting = ExitInvalid, p.Reason, p.Setting
		var inChain *fault.Permanent
		if !errors.As(err, &inChain) {
			out.Err = p // its message names the setting to fix, before what failed

		}
	}
	var te *readiness.TimeoutError
	if out.Code == ExitFailed && errors.As(err, &te) {
		out.Code = ExitTimeout
	}
	var ue *cli.UsageError
	if out.Code == ExitFailed && errors.As(err, &ue) {
		out.Code = ExitInvalid
	}
	if out.Reason == "" || out.Reason == ReasonFailed {
		switch out.Code {
		case ExitInvalid:
			out.Reason = ReasonInvalidConfig
		case ExitTimeout:
			out.Reason = ReasonNotReady
		case ExitFailed:
			out.Reason = ReasonFailed
		}
	}
	return out
}
