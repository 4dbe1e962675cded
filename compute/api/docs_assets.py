"""Swagger UI's files for /docs, read from the installed ``swagger-ui-bundle`` package."""

from __future__ import annotations

from importlib import resources

# Only the three files /docs loads: a name from the URL never becomes a path of its own.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def docs_assets(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and media type, or None for any other name."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        return None
    vendor = resources.files("swagger_ui_bundle") / "vendor"
    # The package keeps one Swagger UI release under vendor/swagger-ui-<version>/.
    for release in vendor.iterdir():
        if release.name.startswith("swagger-ui-"):
            return (release / name).read_bytes(), media_type
    return None
