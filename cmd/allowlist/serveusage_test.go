package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConfigUsageK: usage_k defaults to 5, is read from the file, and
// a value under 2 is refused by name.
func TestServeConfigUsageK(t *testing.T) {
	c := DefaultServeConfig()
	if c.UsageK != 5 || c.Validate() != nil {
		t.Fatalf("default usage_k %d: %v", c.UsageK, c.Validate())
	}
	path := filepath.Join(t.TempDir(), "registry.yaml")
	os.WriteFile(path, []byte("usage_k: 10\n"), 0o644)
	if err := loadYAML(path, &c); err != nil || c.UsageK != 10 {
		t.Fatalf("usage_k from the file: %d, %v", c.UsageK, err)
	}
	for _, k := range []int{1, 0, -5} {
		c.UsageK = k
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "usage_k") {
			t.Errorf("usage_k %d: %v", k, err)
		}
	}
}
