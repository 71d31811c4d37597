"""Shared fixtures. `external_dir` gives the folder of real public datasets (../shared/external) when
WARDSIGHT_EXTERNAL_DIR points at it; tests that need it are marked `external` and are skipped on a
fresh clone without it (CI sets the variable and runs them)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def external_dir() -> Path:
    raw = os.environ.get("WARDSIGHT_EXTERNAL_DIR", "")
    path = Path(raw) if raw else None
    if path is None or not path.is_dir():
        pytest.skip("WARDSIGHT_EXTERNAL_DIR is not set to ../shared/external (validation suite only)")
    return path


@pytest.fixture(scope="session")
def app_db(tmp_path_factory):
    """A page-test database filled by the real pipeline; the app is pointed at it (feed off)."""
    import streamlit as st
    from tests.apptest_support import prepare_database
    url = prepare_database(tmp_path_factory.mktemp("app"))
    st.cache_resource.clear()
    st.cache_data.clear()
    return url
