"""Node health: checks, their result schema, telemetry sources and the remediation policy.

This package stands alone: a GPU node installs it without the control plane.
"""
