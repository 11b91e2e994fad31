"""One data cache per test session: each Debian/npm package is downloaded once and shared."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pocketvec-cache")
