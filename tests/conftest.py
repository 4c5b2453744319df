"""Shared fixtures: the synthetic England, generated once per test session."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from vanguard import panel, synthetic  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_data() -> synthetic.SyntheticData:
    """The default synthetic England drawn in memory (seed ``DEFAULT_SEED``)."""
    return synthetic.generate()


@pytest.fixture(scope="session")
def synthetic_panel():
    """The committed synthetic panel loaded through the public loader.

    Session-scoped and shared: copy before changing it.
    """
    return panel.load_panel("synthetic")
