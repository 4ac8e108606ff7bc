package api

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var openapiYAML []byte

// openapiJSON is the OpenAPI document converted once from YAML.
var openapiJSON = func() []byte {
	var doc map[string]any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	// Answers every route can give: a token that is sent but not valid is
	// refused everywhere (401), too many of those from one address are
	// slowed down (429), and any route can fail inside (500).
	problem := map[string]any{"$ref": "#/components/responses/Problem"}
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			responses, _ := op.(map[string]any)["responses"].(map[string]any)
			for _, code := range []string{"401", "429", "500"} {
				if _, ok := responses[code]; !ok && responses != nil {
					responses[code] = problem
				}
			}
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	return b
}()

func (s *Server) handleOpenAPI(c echo.Context) error {
	return c.Blob(200, "application/json", openapiJSON)
}
