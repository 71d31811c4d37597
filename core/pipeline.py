"""validate → locate → presence → store, one batch at a time. Used by the simulator runner, the MQTT
ingest service and file replay alike, so every feed gets the same checks and the same quarantine."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from core.config import Settings
from core.ingest import Registry, validate
from core.locate import locate_reads
from core.models import to_ms
from core.presence import PresenceTracker
from core.storage.repository import Repository


@dataclass
class TickResult:
    accepted: int
    quarantined: int
    changes: int
    located: pd.DataFrame
    quarantine: pd.DataFrame


class Pipeline:
    def __init__(self, site, repo: Repository, settings: Settings, *, store_raw_reads: bool = True):
        self.site, self.repo, self.settings = site, repo, settings
        self.registry = Registry.from_site(site)
        self.tracker = PresenceTracker(site.tags, change_reads=settings.room_change_reads)
        self.tracker.restore(repo.presence())
        self.store_raw_reads = store_raw_reads

    def process(self, raw: pd.DataFrame, now: datetime, *, source: str = "sim",
                extra_quarantine: pd.DataFrame | None = None) -> TickResult:
        res = validate(raw, self.registry, now, source=source)
        quarantine = res.quarantine if extra_quarantine is None or extra_quarantine.empty else \
            pd.concat([extra_quarantine, res.quarantine], ignore_index=True)
        located = locate_reads(res.accepted, self.site)
        upd = self.tracker.update(located)
        lost = self.tracker.expire(to_ms(now), self.settings.unknown_after_s)
        changes = upd.changes if lost.empty else pd.concat([upd.changes, lost], ignore_index=True)
        self.repo.write_tick(reads=self.repo.raw_read_rows(located) if self.store_raw_reads else None,
                             presence=upd.current if lost.empty else pd.concat(
                                 [upd.current, self.tracker._rows(self.tracker.tag_ids.get_indexer(lost["tag_id"]))],
                                 ignore_index=True),
                             changes=changes, quarantine=quarantine, source=source, now=now)
        return TickResult(len(res.accepted), len(quarantine), len(changes), located, quarantine)
