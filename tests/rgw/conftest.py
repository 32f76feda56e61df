"""The Ceph RGW tier: tests here use the session fixture ``rgw`` (``tests/backends/pytest_rgw.py``, loaded as a
plugin by the root conftest). Skipped without the Ceph binaries unless ``OPE_REQUIRE_REAL_SERVERS=1``."""
