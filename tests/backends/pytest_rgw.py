"""pytest fixture ``rgw``: one throwaway Ceph RGW cluster (:class:`~tests.backends.rgw.RGWCluster`) per session.

Used by ``tests/rgw/conftest.py``. To share the same cluster with other test directories, load this module
as a plugin from the root conftest (``pytest_plugins = ["tests.backends.pytest_rgw"]``) and drop the import
from ``tests/rgw/conftest.py``.

Without the Ceph binaries the fixture skips, unless ``OPE_REQUIRE_REAL_SERVERS=1`` (set in CI): then it
fails, so a broken install cannot pass as green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.backends.rgw import RGWCluster, missing_binaries

REQUIRE_ENV = "OPE_REQUIRE_REAL_SERVERS"


def require_real_servers() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


@pytest.fixture(scope="session")
def rgw() -> Iterator[RGWCluster]:
    missing = missing_binaries()
    if missing:
        reason = (f"Ceph RGW tier needs the Debian packages ceph-mon ceph-osd radosgw ceph-common "
                  f"(missing on PATH: {', '.join(missing)}; run scripts/install-test-packages.sh)")
        if require_real_servers():
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with RGWCluster() as cluster:  # raises RGWError with daemon log tails if the bootstrap fails
        print(f"\n[rgw] bootstrap took {cluster.bootstrap_seconds:.2f}s on {cluster.endpoint} "
              f"(pids {cluster.pids}): {cluster.timings}")
        yield cluster
