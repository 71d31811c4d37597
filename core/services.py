"""Composition root: builds the pipeline with every feature's filters and hooks installed, the same
way for the app's built-in simulator, the MQTT ingest service and file replay.

A feature module listed in FEATURES provides `install(pipeline) -> None` and attaches its read
filters (`pipeline.filters`) and tick hooks (`pipeline.hooks`).
"""
from __future__ import annotations

import importlib

from core.config import Settings
from core.pipeline import Pipeline
from core.storage.repository import Repository

FEATURES = [
    "core.security.hooks",     # staff privacy filter, cloned-tag detection (issue 5)
    "core.bedside_service",    # bedside sessions from bed-level proximity (issue 4)
    "core.alarms.service",     # alarm rules, lifecycle and escalation each tick (issue 3)
    "core.health",             # reader clock skew, ingest rate, tag batteries (issue 6)
]


def build_pipeline(site, repo: Repository, settings: Settings, *, store_raw_reads: bool = True) -> Pipeline:
    pipe = Pipeline(site, repo, settings, store_raw_reads=store_raw_reads)
    for name in FEATURES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:       # feature not built yet: the pipeline runs without it
                continue
            raise
        module.install(pipe)
    return pipe
