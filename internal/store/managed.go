package store

import (
	"context"
	"fmt"
)

// ManagedModels lists, sorted, the ids of the rows still not unavailable whose metadata says they
// describe a LiteLLM deployment carrying marker in model_info.managed_by. The backend's own sync
// copies model_info into metadata too, so the marker survives its rewrites. The job reads this to
// prune from the database what it can no longer see in LiteLLM (a run that deleted the deployment
// and stopped before writing the row).
func (s *Store) ManagedModels(ctx context.Context, marker string) (_ []string, err error) {
	defer func() { err = s.red.Error(err) }()
	res, err := s.query(ctx, `SELECT id FROM public.models
WHERE metadata->'litellm_model_info'->>'managed_by' = $1::text AND availability IS DISTINCT FROM 'unavailable'
ORDER BY id`, []byte(marker))
	if err != nil {
		return nil, fmt.Errorf("reading the models this job manages: %w", err)
	}
	var ids []string
	for _, cols := range res {
		ids = append(ids, string(cols[0]))
	}
	return ids, nil
}
