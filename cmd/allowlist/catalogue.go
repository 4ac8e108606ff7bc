package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist"
	"gopkg.in/yaml.v3"
)

// decodeCatalogue reads a YAML catalogue strictly: unknown keys and wrong
// types are errors with their line numbers.
func decodeCatalogue(b []byte) (allowlist.Catalogue, error) {
	var c allowlist.Catalogue
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return c, errors.New("the file is empty")
		}
		return c, err
	}
	return c, nil
}

var pathPart = regexp.MustCompile(`([a-z_]+)(?:\[(\d+)\])?`)

// lineOf finds the line of a field path such as sites[3].domains[1] in a
// YAML document, or 0.
func lineOf(b []byte, path string) int {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		m := pathPart.FindStringSubmatch(part)
		if m == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == m[1] {
				next = n.Content[i+1]
				line = n.Content[i].Line
			}
		}
		if next == nil {
			return line
		}
		n = next
		if m[2] != "" {
			i, _ := strconv.Atoi(m[2])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		}
	}
	return line
}

// explain turns an import error into lines naming the YAML line and field.
func explain(b []byte, file string, err error) error {
	var e *allowlist.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	var lines []string
	for _, f := range e.Fields {
		lines = append(lines, fmt.Sprintf("%s:%d: %s: %s", file, lineOf(b, f.Field), f.Field, f.Message))
	}
	return fmt.Errorf("nothing was imported:\n%s", strings.Join(lines, "\n"))
}
