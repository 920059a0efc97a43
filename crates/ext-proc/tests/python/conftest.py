import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from epp_driver import Epp  # noqa: E402

# Loopback addresses nothing listens on: scraping fails fast, metrics stay missing (stale).
ENDPOINTS = "a=127.0.0.2:18000,b=127.0.0.3:18000,c=127.0.0.4:18000"


@pytest.fixture(scope="session")
def epp():
    e = Epp(ENDPOINTS, extra=["--objective", "batch=-1", "--objective", "chat=5", "--max-body-bytes", "300000"])
    yield e
    e.stop()


@pytest.fixture(scope="session")
def empty_epp():
    e = Epp("")
    yield e
    e.stop()
