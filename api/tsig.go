package api

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// tsigStore is the store's zone-transfer key management, when it has it.
func (s *Server) tsigStore() (allowlist.TSIGStore, error) {
	ts, ok := s.reg.(allowlist.TSIGStore)
	if !ok {
		return nil, allowlist.Errorf(allowlist.ENOTIMPLEMENTED, "this registry's store keeps no zone-transfer keys")
	}
	return ts, nil
}

func (s *Server) handleTSIGCreate(c echo.Context) error {
	ts, err := s.tsigStore()
	if err != nil {
		return err
	}
	var in struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	k, secret, err := ts.CreateTSIGKey(c.Request().Context(), actorOf(c), in.Name, in.Scopes)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, struct {
		allowlist.TSIGKey
		Algorithm string `json:"algorithm"`
		Secret    string `json:"secret"`
	}{k, "hmac-sha256", base64.StdEncoding.EncodeToString(secret)})
}

func (s *Server) handleTSIGList(c echo.Context) error {
	ts, err := s.tsigStore()
	if err != nil {
		return err
	}
	keys, err := ts.FindTSIGKeys(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, keys)
}

func (s *Server) handleTSIGRevoke(c echo.Context) error {
	ts, err := s.tsigStore()
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return allowlist.Errorf(allowlist.ENOTFOUND, "TSIG key %q not found", c.Param("id"))
	}
	if err := ts.RevokeTSIGKey(c.Request().Context(), actorOf(c), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
