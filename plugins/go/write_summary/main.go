// A Bulkhead task in Go (ABI v1: a WASI preview 1 command), built with
// `GOOS=wasip1 GOARCH=wasm go build`. It reads the task document on stdin and writes a Markdown
// summary of every upstream output it was given into the file `params.path` (a writable mount:
// the sandbox gives it no other file), then outputs what it wrote. It logs structured records
// to stderr. With `"fail": "transient"` in its parameters it exits 75 (EX_TEMPFAIL): the host
// records a transient failure and retries under the task's retry policy.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// The part of the task document this task reads (docs/plugin-contract.md has it all).
type document struct {
	Workflow string `json:"workflow"`
	RunID    string `json:"run_id"`
	Task     string `json:"task"`
	Attempt  int    `json:"attempt"`
	Params   struct {
		Path  string `json:"path"`
		Title string `json:"title"`
		Fail  string `json:"fail"`
	} `json:"params"`
	Inputs map[string]json.RawMessage `json:"inputs"`
}

// logf writes one structured log record to stderr.
func logf(level, msg string, fields map[string]any) {
	record := map[string]any{"level": level, "msg": msg}
	for k, v := range fields {
		record[k] = v
	}
	line, _ := json.Marshal(record)
	fmt.Fprintln(os.Stderr, string(line))
}

func fail(code int, msg string) {
	logf("error", msg, nil)
	os.Exit(code)
}

func main() {
	var doc document
	if err := json.NewDecoder(os.Stdin).Decode(&doc); err != nil {
		fail(1, "the task document is not JSON: "+err.Error())
	}
	if doc.Params.Fail == "transient" {
		logf("warn", "asked to fail; try again", map[string]any{"attempt": doc.Attempt})
		os.Exit(75)
	}
	if doc.Params.Path == "" {
		fail(1, "params.path (the file to write, inside a writable mount) is required")
	}
	title := doc.Params.Title
	if title == "" {
		title = doc.Workflow
	}
	names := make([]string, 0, len(doc.Inputs))
	for name := range doc.Inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nRun `%s`, written by the Go task `%s`.\n", title, doc.RunID, doc.Task)
	for _, name := range names {
		pretty, err := json.MarshalIndent(doc.Inputs[name], "", "  ")
		if err != nil {
			pretty = doc.Inputs[name]
		}
		fmt.Fprintf(&b, "\n## %s\n\n```json\n%s\n```\n", name, pretty)
	}
	if err := os.WriteFile(doc.Params.Path, []byte(b.String()), 0o644); err != nil {
		fail(1, "cannot write "+doc.Params.Path+": "+err.Error())
	}
	logf("info", "wrote the summary", map[string]any{"path": doc.Params.Path, "bytes": b.Len()})
	out, _ := json.Marshal(map[string]any{
		"language": "go",
		"path":     doc.Params.Path,
		"bytes":    b.Len(),
		"sections": names,
	})
	fmt.Println(string(out))
}
