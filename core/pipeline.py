"""validate → locate → presence → store, one batch at a time. Used by the simulator runner, the MQTT
ingest service and file replay alike, so every feed gets the same checks and the same quarantine."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import logging
import queue
import threading

import pandas as pd

from core.config import Settings
from core.errors import StorageError, WardsightError
from core.ingest import Registry, validate
from core.locate import locate_reads
from core.models import to_ms
from core.presence import PresenceTracker
from core.storage.repository import Repository


log = logging.getLogger(__name__)


@dataclass
class TickResult:
    accepted: int
    quarantined: int
    changes: int
    located: pd.DataFrame
    quarantine: pd.DataFrame
    changes_frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    withheld: dict[str, int] = field(default_factory=dict)


# A filter sees located reads before presence and returns the reads to keep plus counts of what it
# withheld by policy (e.g. staff off duty or in privacy zones); withheld reads are neither tracked
# nor stored, and are not quarantine (they are not bad data).
ReadFilter = Callable[[pd.DataFrame, datetime], tuple[pd.DataFrame, dict[str, int]]]
# A hook runs after each stored tick (alarm rules, clone detection, bedside sessions ...). A failing
# hook is reported by the runner and never loses the tick's data, which is already stored.
TickHook = Callable[["TickResult", datetime], None]


class Pipeline:
    """`async_store=True` commits each tick on a writer thread while the caller computes the next one
    (PostgreSQL/SQLite time overlaps with validation/locate/presence on the second core). A queue of
    one pending tick gives back-pressure; a failed write is raised (StorageError) from the next
    `process()` or `flush()`. Hooks then run before their tick is committed, so keep it off wherever
    acknowledgements or hooks depend on the commit (the MQTT Committer uses the synchronous default)."""

    def __init__(self, site, repo: Repository, settings: Settings, *, store_raw_reads: bool = True,
                 async_store: bool = False):
        self.site, self.repo, self.settings = site, repo, settings
        # the writer commits without waiting for the WAL flush (see Repository.write_tick `durable`)
        self._writer = _Writer(lambda **job: repo.write_tick(**job, durable=False)) \
            if async_store and _shared_across_threads(repo) else None
        self.registry = Registry.from_site(site)
        self.tracker = PresenceTracker(site.tags, change_reads=settings.room_change_reads)
        self.tracker.restore(repo.presence())
        self.store_raw_reads = store_raw_reads
        self.filters: list[ReadFilter] = []
        self.hooks: list[TickHook] = []

    def process(self, raw: pd.DataFrame, now: datetime, *, source: str = "sim",
                extra_quarantine: pd.DataFrame | None = None) -> TickResult:
        res = validate(raw, self.registry, now, source=source)
        quarantine = res.quarantine if extra_quarantine is None or extra_quarantine.empty else \
            pd.concat([extra_quarantine, res.quarantine], ignore_index=True)
        located = locate_reads(res.accepted, self.site)
        withheld: dict[str, int] = {}
        for keep in self.filters:
            located, counts = keep(located, now)
            for k, v in counts.items():
                withheld[k] = withheld.get(k, 0) + int(v)
        upd = self.tracker.update(located)
        lost = self.tracker.expire(to_ms(now), self.settings.unknown_after_s)
        changes = upd.changes if lost.empty else pd.concat([upd.changes, lost], ignore_index=True)
        (self._writer.submit if self._writer else self.repo.write_tick)(reads=self.repo.raw_read_rows(located) if self.store_raw_reads else None,
                             presence=upd.current if lost.empty else pd.concat(
                                 [upd.current, self.tracker._rows(self.tracker.tag_ids.get_indexer(lost["tag_id"]))],
                                 ignore_index=True),
                             changes=changes, quarantine=quarantine, source=source, now=now)
        result = TickResult(len(located), len(quarantine), len(changes), located, quarantine, changes, withheld)
        errors = []
        for hook in self.hooks:
            try:
                hook(result, now)
            except Exception as exc:  # noqa: BLE001 - one failing consumer must not stop the others
                log.exception("tick hook %s failed", getattr(hook, "__qualname__", hook))
                errors.append(f"{getattr(hook, '__name__', hook)}: {exc.__class__.__name__}: {exc}")
        if errors:
            raise HookError("; ".join(errors))
        return result


    def flush(self) -> None:
        """Wait until every submitted tick is committed; raise the writer's error if one failed."""
        if self._writer:
            self._writer.flush()

    def close(self) -> None:
        if self._writer:
            self._writer.close()


def _shared_across_threads(repo: Repository) -> bool:
    """False for an in-memory SQLite database held per thread (SQLAlchemy's SingletonThreadPool): a
    writer thread would see an empty database of its own, so such a pipeline stores synchronously."""
    from sqlalchemy.pool import SingletonThreadPool
    return not isinstance(repo.engine.pool, SingletonThreadPool)


class _Writer:
    """One daemon thread running `write(**kwargs)` for queued ticks, in order."""

    def __init__(self, write: Callable[..., None], depth: int = 1):
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wardsight-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._write(**job)          # each tick is its own transaction: later ones still go
            except BaseException as exc:  # noqa: BLE001 - handed to the caller on its next call
                log.exception("async tick write failed")
                self._error = self._error or exc
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise StorageError(f"an earlier tick was not stored: {exc.__class__.__name__}: {exc}") from exc

    def submit(self, **job) -> None:
        self._raise()
        self._queue.put(job)            # blocks while a tick is pending: back-pressure

    def flush(self) -> None:
        self._queue.join()
        self._raise()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()


class HookError(WardsightError):
    """One or more tick hooks failed (the tick's reads were stored before the hooks ran)."""
