package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
)

// Binary returns the path of a program (psql, pg_dump, ...) of the PostgreSQL installation the tests
// start their servers from, so that a script runs with the client of the same version.
func Binary(name string) (string, error) {
	dir, err := findBinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not beside the PostgreSQL server binaries: %w", name, err)
	}
	return p, nil
}
