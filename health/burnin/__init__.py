"""Burn-in workloads that run on the node's own GPUs (PyTorch), imported only where torch is.

``health`` itself never imports this package: a node without torch still
runs every passive check.
"""
