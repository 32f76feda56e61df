"""Loopback emulators used by the demo and the tests (never by the exporter in production)."""
