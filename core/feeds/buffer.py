"""Batching, retry and idempotency shared by the MQTT ingest service and file replay.

* `install_idempotency(pipeline)` puts a read filter first in the pipeline: located reads whose
  identity (tag_id, ts_ms, origin) is already in raw_reads are withheld as "already stored", so a
  redelivered MQTT message or a file replayed twice neither moves presence nor fires hooks again
  (raw_reads' unique constraint makes the insert itself idempotent as well).
* `Committer.commit(batch)` runs one batch through the pipeline. A StorageError means nothing of the
  batch was stored: the caller keeps the batch and retries it later with the same `now` (the same
  validation verdicts). The presence tracker advances in memory before the write, so a failed
  attempt puts it back as it was (the retry then yields the changes of a run that never failed).
* `Backoff`: exponential retry delays with a cap.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from core.errors import StorageError
from core.models import QUARANTINE_COLUMNS
from core.pipeline import HookError, Pipeline, TickResult

log = logging.getLogger(__name__)
ALREADY_STORED = "already stored"


def already_stored_filter(repo):
    """A pipeline ReadFilter that withholds reads already in raw_reads (see module doc)."""
    def keep_new(located: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, dict[str, int]]:
        if located.empty:
            return located, {}
        ids = pd.DataFrame({"tag_id": located["tag_id"].astype(str).to_numpy(),
                            "ts_ms": located["ts"].astype("datetime64[ms, UTC]").astype("int64").to_numpy(),
                            "origin": located["origin"].astype(str).to_numpy()})
        stored = repo.existing_reads(ids)
        if stored.empty:
            return located, {}
        hit = pd.MultiIndex.from_frame(ids).isin(pd.MultiIndex.from_frame(stored))
        return located[~hit].reset_index(drop=True), {ALREADY_STORED: int(hit.sum())}
    keep_new.__name__ = "already_stored"
    return keep_new


def install_idempotency(pipeline: Pipeline) -> None:
    if pipeline.store_raw_reads:          # without raw reads there is no identity to look up
        pipeline.filters.insert(0, already_stored_filter(pipeline.repo))


@dataclass
class Batch:
    """Decoded input of one pipeline run, kept unchanged until it is stored."""
    raw: pd.DataFrame
    now: datetime
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))
    acks: list = field(default_factory=list)          # transport receipts to confirm once stored
    meta: dict = field(default_factory=dict)          # transport data (e.g. signature seq marks)
    attempts: int = 0


@dataclass
class CommitOutcome:
    result: TickResult | None
    hook_error: str | None = None


class Committer:
    """Commits batches in order. The presence tracker advances in memory before the write; when the
    write fails it is put back exactly as it was, so the retried batch gives the same presence
    changes (hysteresis progress included) as a run that never failed."""

    def __init__(self, pipeline: Pipeline, source: str):
        self.pipeline, self.source = pipeline, source

    def commit(self, batch: Batch) -> CommitOutcome:
        """Store `batch` or raise StorageError (then nothing of it is stored; retry the same batch)."""
        batch.attempts += 1
        saved = copy.deepcopy(self.pipeline.tracker)        # numpy arrays per tag: cheap next to the write
        try:
            result = self.pipeline.process(batch.raw, batch.now, source=self.source,
                                           extra_quarantine=batch.quarantine)
            return CommitOutcome(result)
        except HookError as exc:        # the tick was stored; a consumer failed afterwards
            log.warning("tick hooks failed after store: %s", exc)
            return CommitOutcome(None, str(exc))
        except StorageError:
            self.pipeline.tracker = saved
            raise


class Backoff:
    """Delays initial_s, 2·initial_s, 4·initial_s … capped at max_s; `reset()` after a success."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0, factor: float = 2.0):
        self.initial_s, self.max_s, self.factor = initial_s, max_s, factor
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.initial_s * self.factor ** self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
