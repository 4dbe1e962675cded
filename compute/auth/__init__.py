"""Who is asking and what they may do: principals, API tokens and the authorization table.

Pure: no web framework, no database. The API (compute/api/auth.py), the portal and the
local CLI all decide through ``compute.auth.policy``.
"""
