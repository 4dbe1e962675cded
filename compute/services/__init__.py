"""Services: the control plane's use cases, shared by the CLI, the API and the sweep loop."""
