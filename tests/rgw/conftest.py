"""The Ceph RGW tier: one throwaway cluster for the whole session (fixture ``rgw``, see
``tests/backends/pytest_rgw.py``). Skipped without the Ceph binaries unless ``OPE_REQUIRE_REAL_SERVERS=1``."""

from tests.backends.pytest_rgw import rgw

__all__ = ["rgw"]
