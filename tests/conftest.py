"""Fixtures shared by the model, loss and regularizer tests."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Float64 for oracle tests; the config is restored when the test ends, even on failure."""
    with jax.enable_x64(True):
        yield
