"""Shared test set-up: repo root on sys.path, quiet TensorFlow, the `slow` marker."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (minutes); deselect with -m 'not slow'")
    config.addinivalue_line("markers", "e2e: the dashboard in headless Chromium (skipped without /usr/bin/chromium)")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
