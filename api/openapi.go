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
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
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
