"""Shared test set-up: repo root on sys.path, quiet TensorFlow, the `slow` marker, and the data
fixtures every model test shares (loaded once per session, read-only)."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (minutes); deselect with -m 'not slow'")
    config.addinivalue_line("markers",
                            "e2e: the dashboard in headless Chromium (skipped without /usr/bin/chromium)")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")


def _read_only(dataset):
    """Freeze the image and label arrays: a session fixture is shared, so no test may edit it."""
    for x in [dataset.train, dataset.valid, dataset.test, *dataset.labels.values()]:
        x.flags.writeable = False
    return dataset


@pytest.fixture(scope="session")
def bars():
    """Bars 4000 / 500 / 2000: the largest any model test needs (tests that count steps or pay per
    image take `support.subset` of it)."""
    from zoo import data

    return _read_only(data.load("bars", n_train=4000, n_valid=500, n_test=2000))


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, 1000 / 350 / 447 at 17 levels."""
    from zoo import data

    return _read_only(data.load("digits"))
