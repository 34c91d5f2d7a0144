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
	rows, err := s.pool.Query(ctx, `SELECT id FROM public.models
WHERE metadata->'litellm_model_info'->>'managed_by' = $1 AND availability IS DISTINCT FROM 'unavailable'
ORDER BY id`, marker)
	if err != nil {
		return nil, fmt.Errorf("reading the models this job manages: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reading the models this job manages: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the models this job manages: %w", err)
	}
	return ids, nil
}
