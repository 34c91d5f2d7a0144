package secrets

import (
	"fmt"
	"io"
)

// alphanumeric is the alphabet of every generated value: URL-safe (no percent-encoding in the
// database URLs), shell-safe, and free of the comma that separates ADMIN_API_KEYS entries.
const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Lengths of the generated values (characters after any prefix). 62 symbols carry 5.95 bits each:
// 32 characters are 190 bits.
const (
	passwordLength          = 32
	masterKeyLength         = 48
	saltKeyLength           = 48
	jwtSecretLength         = 64
	oauthClientSecretLength = 48
	adminKeyLength          = 40
)

// randomString returns n characters drawn uniformly from alphabet, reading randomness from r
// (crypto/rand.Reader in production). Bytes at or above the largest multiple of len(alphabet) are
// rejected, so that no character is more likely than another.
func randomString(r io.Reader, n int, alphabet string) (string, error) {
	if len(alphabet) == 0 || len(alphabet) > 256 {
		return "", fmt.Errorf("alphabet of %d characters", len(alphabet))
	}
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("reading random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, alphabet[int(b)%len(alphabet)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}
