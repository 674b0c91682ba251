import logging
import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> str:
    """One local Ray for the whole session (starting one costs seconds): 2 CPUs, no dashboard.
    Returns its address, for CLI runs that join it with --address."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'clearpipe[ray]'")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'clearpipe[ray]'")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # see clearpipe.bulk.ray._connect
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
