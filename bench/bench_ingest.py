"""Sustained ingest (validate/parse → locate → presence → store) and the 50,000-tag hospital tick.

    python -m bench.bench_ingest            # PostgreSQL too when WARDSIGHT_PG_URL is set

A synthetic hospital (45 wards on 9 floors, built with the sample site's ward layout; 50,000 tags:
patients, staff, devices) is driven by the simulator; its raw read frames go through
`core.pipeline.Pipeline.process` into a fresh database, raw reads stored.

ours     Pipeline with Repository.write_tick's bulk path (sqlite3 executemany in WAL, in key order /
         PostgreSQL COPY into a temp table + INSERT ... ON CONFLICT)
naive    the same pipeline storing through SQLAlchemy Core executemany of dict records (the generic
         path the bulk path replaces), one tick
library  pandas DataFrame.to_sql of the tick's raw reads alone (store only, no presence)
Throughput is reads / wall time over all ticks after a warm-up tick; CPU time is printed alongside
because on a shared 2-core machine wall time also measures the neighbours.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from bench.common import Row, cpu_of, hospital, rate
from core.config import Settings
from core.feeds.simulator import HospitalSimulator
from core.ingest import Registry, validate
from core.locate import locate_reads
from core.pipeline import Pipeline
from core.storage import schema as s
from core.storage.repository import Repository

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)     # a weekday morning: day shift on duty


class CoreRepository(Repository):
    """The generic SQLAlchemy Core write path (what write_tick did before the bulk path)."""

    def _bulk_write(self, conn, table, df, conflict=None) -> bool:
        return False


def _fresh(url: str, site, cls=Repository) -> Repository:
    repo = cls.from_url(url)
    if repo.dialect == "postgresql":
        import core.storage.tables_all  # noqa: F401
        s.metadata.drop_all(repo.engine)
    repo.create_schema()
    repo.load_site(site)
    return repo


def _drive(repo: Repository, site, raws: list, async_store: bool = True) -> tuple[int, float, float]:
    """(reads, wall s, CPU s) of processing `raws[1:]` after `raws[0]` as a warm-up; the clock stops
    when the last tick is committed."""
    pipe = Pipeline(site, repo, Settings(), async_store=async_store)
    pipe.process(raws[0], T0)
    pipe.flush()
    n = sum(len(r) for r in raws[1:])

    def go():
        for k, r in enumerate(raws[1:]):
            pipe.process(r, T0 + timedelta(seconds=k + 1))
        pipe.flush()
    wall, cpu, _ = cpu_of(go)
    pipe.close()
    return n, wall, cpu


def _to_sql_seconds(repo: Repository, site, raw) -> tuple[float, int]:
    """pandas to_sql of one tick's raw-read rows (what a user would reach for to store a frame)."""
    rows = repo.raw_read_rows(locate_reads(validate(raw, Registry.from_site(site), T0).accepted, site))
    rows = rows.assign(ts_ms=rows["ts_ms"] + 10_000_000)        # no clash with stored rows
    wall, _, _ = cpu_of(lambda: rows.to_sql("raw_reads", repo.engine, if_exists="append", index=False))
    return wall, len(rows)


def bench_schema_url(url: str) -> str:
    """The PostgreSQL URL with search_path set to a `ws_bench_<pid>` schema (created here), so the
    bench never drops or fills the tables of the database it is pointed at, and two runs at once
    (a benchmark and the smoke test) never lock each other."""
    from sqlalchemy import create_engine, text
    schema = f"ws_bench_{os.getpid()}"
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    eng.dispose()
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def _backend_row(name: str, url: str, site, raws, target_rate: float) -> Row:
    n, wall, cpu = _drive(_fresh(url, site), site, raws)
    nb, wall_b, _ = _drive(_fresh(url, site, CoreRepository), site, raws[:2], async_store=False)
    lib_s, n_lib = _to_sql_seconds(_fresh(url, site), site, raws[1])
    ours = n / wall
    return Row(f"sustained ingest → {name} ({len(raws[0]):,} reads/tick, raw reads stored)",
               f"{rate(n, wall)} reads (CPU {rate(n, cpu)})",
               f"{rate(nb, wall_b)} (Core executemany)", f"{rate(n_lib, lib_s)} (to_sql, raw reads only)",
               f"{ours / (nb / wall_b):.1f}× Core, {ours / (n_lib / lib_s):.1f}× to_sql",
               f"≥ {target_rate / 1e3:.0f} k reads/s", ours >= target_rate,
               [f"{name}: {n:,} reads in {wall:.2f} s wall, {cpu:.2f} s CPU of this process"])


def scale_row(site, sim: HospitalSimulator, ticks: int, tmp: Path, *, features: bool = True) -> Row:
    """Issue 2: the simulator plus the pipeline keep up with one read per tag per second — the
    foundation pipeline alone (validate → locate → presence → store), and the app's full pipeline
    (build_pipeline: privacy filter, clone detection, bedside, alarms, health hooks included)."""
    from core.services import build_pipeline
    repo = _fresh(f"sqlite:///{tmp / ('scale-full.db' if features else 'scale.db')}", site)
    # the synthetic hospital has no clinical sample (fridges, bins, monitors): the alarm service runs
    # its location and tag rules on live presence but simulates no sensors (as with a real feed)
    pipe = build_pipeline(site, repo, Settings(feed="none")) if features else Pipeline(site, repo, Settings())
    walls, cpus, sims = [], [], []
    for k in range(ticks + 1):
        now = T0 + timedelta(seconds=600 + k)
        w, c, raw = cpu_of(lambda: sim.step(now))
        w2, c2, _ = cpu_of(lambda: pipe.process(raw, now))
        if k:                                           # tick 0: every tag's first place (warm-up)
            walls.append(w + w2), cpus.append(c + c2), sims.append(w)
    tags = len(site.tags)
    worst, mean = max(walls), float(np.mean(walls))
    # keeping up means N ticks take less than N seconds: the mean decides, the worst is shown
    what = "simulator + full pipeline (all feature hooks)" if features else "simulator + foundation pipeline"
    return Row(f"{tags:,}-tag hospital, 1 read/tag/s: {what} per tick",
               f"{mean * 1e3:.0f} ms mean, {worst * 1e3:.0f} ms worst (CPU {np.mean(cpus) * 1e3:.0f} ms)",
               target="< 1 s per tick (mean)", ok=mean < 1.0,
               notes=[f"simulator alone {np.median(sims) * 1e3:.0f} ms per tick"])


def run(tags: int = 50_000, ticks: int = 6, scale_ticks: int = 5) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="ws-bench-") as tmp_s:
        tmp = Path(tmp_s)
        site = hospital(tmp, tags)
        sim = HospitalSimulator(site, seed=3, fault_rate=0.002)
        raws = [sim.step(T0 + timedelta(seconds=k)) for k in range(ticks + 1)]
        rows = [_backend_row("SQLite", f"sqlite:///{tmp / 'ingest.db'}", site, raws, 150e3)]
        pg = os.environ.get("WARDSIGHT_PG_URL")
        if pg:
            rows.append(_backend_row("PostgreSQL", bench_schema_url(pg), site, raws, 100e3))
        else:
            rows.append(Row("sustained ingest → PostgreSQL", "skipped: set WARDSIGHT_PG_URL "
                            "(`source .ci/services.sh`)", target="≥ 100 k reads/s"))
        rows.append(scale_row(site, sim, scale_ticks, tmp, features=False))
        rows.append(scale_row(site, sim, scale_ticks, tmp, features=True))
        return rows


if __name__ == "__main__":
    from bench.common import format_table
    rows = run()
    print(format_table(rows))
    for r in rows:
        print("\n".join("  " + n for n in r.notes))
