"""Session fixture for the Ceph RGW tier: one throwaway cluster for the whole pytest session.

Without the Ceph binaries the tier is skipped, unless ``OPE_REQUIRE_REAL_SERVERS=1`` (set in CI), in which
case it fails, so a broken install cannot pass as green.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.backends.rgw import RGWCluster, missing_binaries

REQUIRE_ENV = "OPE_REQUIRE_REAL_SERVERS"


def _require_real_servers() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def rgw() -> Iterator[RGWCluster]:
    missing = missing_binaries()
    if missing:
        reason = (f"Ceph RGW tier needs the Debian packages ceph-mon ceph-osd radosgw ceph-common "
                  f"(missing on PATH: {', '.join(missing)}; run scripts/install-test-packages.sh)")
        if _require_real_servers():
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = RGWCluster()
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    print(f"\n[rgw] bootstrap took {cluster.bootstrap_seconds:.2f}s on {cluster.endpoint} "
          f"(pids {cluster.pids}): {cluster.timings}")
    try:
        yield cluster
    finally:
        cluster.stop()
