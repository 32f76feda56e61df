"""Test support: loopback servers and scenario builders (real HTTP, no patched clients)."""
