"""objstore-permission-exporter: probe each Thanos component's object-storage permissions under its own identity."""

__version__ = "0.1.0"
