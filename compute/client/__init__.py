"""What the CLI talks to: the data directory here (`local`) or a control plane's API
(`remote`), behind one interface (`protocol`) that answers with the API's view dicts.

Nothing is imported here: `remote` must start without the server's libraries.
"""
