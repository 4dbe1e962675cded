"""Grafana dashboards for computectl, generated with grafana-foundation-sdk.

`python -m dashboards.build` writes dashboards/grafana/*.json; tests check the committed
files are what the code builds. A tool of the repository: the runtime never imports it (the
SDK is the `dashboards` extra, not a runtime dependency)."""
