package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestB"}
{"Action":"output","Package":"q","Test":"TestC/sub","Output":"    c_test.go:1: no kubectl\n"}
{"Action":"skip","Package":"q","Test":"TestC/sub"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}
{"Action":"fail","Package":"p"}
`

func TestReport(t *testing.T) {
	var out bytes.Buffer
	skips, failed, err := report(strings.NewReader(stream), &out)
	require.NoError(t, err)
	assert.True(t, failed)
	assert.Equal(t, []skip{{"p", "TestA", "a_test.go:9: needs root"}, {"q", "TestC/sub", "c_test.go:1: no kubectl"}}, skips)
	assert.Contains(t, out.String(), "b_test.go:3: boom", "a failure's output is shown")
	assert.NotContains(t, out.String(), "needs root", "a skip's output waits for the summary")

	out.Reset()
	n := summarize(&out, skips, map[string]bool{"q TestC": true})
	assert.Equal(t, 1, n)
	assert.Contains(t, out.String(), "NOT ALLOWED p TestA: a_test.go:9: needs root")
	assert.Contains(t, out.String(), "allowed     q TestC/sub: c_test.go:1: no kubectl")
}
