"""Tenants: one spec for every pool a customer buys, planned and applied across backends."""
