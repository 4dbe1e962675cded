// Package apiserver stands in for dex's gRPC administration API when testenv/dex
// builds dex (go build -overlay; see testenv/dex.d/README.md). At the pinned dex
// commit that API uses messages newer than any released
// github.com/dexidp/dex/api/v2 (v2.4.0 is the newest the module proxy has), so
// dex's own package does not compile against it. testenv/dex never configures
// `grpc:`, so dex never serves this API; everything a login uses (the OAuth2 and
// OpenID Connect endpoints, the password database, signing keys) is dex's own
// code, unchanged.
package apiserver

import (
	"log/slog"

	"github.com/dexidp/dex/api/v2"
	"github.com/dexidp/dex/server/backchannel"
	"github.com/dexidp/dex/server/connectors"
	"github.com/dexidp/dex/server/discovery"
	"github.com/dexidp/dex/storage"
)

type unimplemented struct {
	api.UnimplementedDexServer
}

// NewAPI has the signature cmd/dex calls; every method answers codes.Unimplemented.
func NewAPI(_ storage.Storage, _ *slog.Logger, _ string, _ *connectors.Cache, _ *discovery.Handler, _ *backchannel.Notifier) api.DexServer {
	return unimplemented{}
}
