"""computectl's control plane: state, remediation, capacity, API, portal, metrics and CLI."""
