package job

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

// syncRoleSecrets generates the login Secrets of the CloudNativePG managed roles (DATABASE_ROLES=true,
// set by gitops/components/ha) after the contract Secrets, and appends its outcome to the summary.
func syncRoleSecrets(ctx context.Context, dc dynamic.Interface, namespace string, s secrets.Settings, log *slog.Logger, out io.Writer, summary *string) error {
	res, err := secrets.SyncRoles(ctx, dc, namespace, s, nil, log)
	if res != nil {
		line := res.Summary()
		fmt.Fprintln(out, line)
		*summary += "; " + line
	}
	if err != nil {
		return fmt.Errorf("role secrets: %w", err)
	}
	return nil
}
