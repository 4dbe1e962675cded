"""The self-service portal: server-rendered pages (Jinja2, autoescaped) for a tenant's
people under /portal/t/{tenant} and for operators and viewers under /portal/ops.

The pages sit behind the same front door as the API (compute/api/auth.py): every route has
its row in compute/auth/policy.py. A form that changes something is sent with the session's
CSRF token in X-CSRF-Token, as the API expects it (a few lines of script in base.html).
"""
