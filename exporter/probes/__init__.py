"""Probing: the probe keyspace and its one choke point, the janitor, and the per-target cycle."""
