"""Background feed runner: one thread per server process drives a source (the simulator by default)
through the pipeline every tick. Errors are counted and reported, never allowed to kill the thread."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import pandas as pd

from core.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class RunnerStatus:
    ticks: int = 0
    accepted: int = 0
    quarantined: int = 0
    errors: int = 0
    last_error: str | None = None
    last_tick: datetime | None = None
    last_tick_ms: float = 0.0
    recent: list[float] = field(default_factory=list)


class FeedRunner:
    def __init__(self, pipeline: Pipeline, source: Callable[[datetime], pd.DataFrame], *, tick_s: float = 1.0,
                 source_name: str = "sim", clock: Callable[[], datetime] | None = None):
        self.pipeline, self.source, self.tick_s, self.source_name = pipeline, source, tick_s, source_name
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.status = RunnerStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        now = self.clock()
        t0 = time.perf_counter()
        try:
            res = self.pipeline.process(self.source(now), now, source=self.source_name)
            self.status.accepted += res.accepted
            self.status.quarantined += res.quarantined
        except Exception as exc:  # keep the feed alive; the status page shows the error
            self.status.errors += 1
            self.status.last_error = f"{now:%H:%M:%S} {exc.__class__.__name__}: {exc}"
            log.exception("feed tick failed")
        self.status.ticks += 1
        self.status.last_tick = now
        self.status.last_tick_ms = (time.perf_counter() - t0) * 1000
        self.status.recent = (self.status.recent + [self.status.last_tick_ms])[-60:]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            self._stop.wait(max(0.0, self.tick_s - (time.monotonic() - started)))

    def start(self) -> "FeedRunner":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wardsight-feed", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        try:                    # an async_store pipeline commits what it still holds
            getattr(self.pipeline, "flush", lambda: None)()
        except Exception as exc:  # noqa: BLE001 - reported like a failed tick
            self.status.errors += 1
            self.status.last_error = f"{exc.__class__.__name__}: {exc}"
            log.exception("feed flush failed")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
