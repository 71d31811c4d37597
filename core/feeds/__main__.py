"""Feed commands (defaults come from the WARDSIGHT_* settings; see docs/production.md):

    python -m core.feeds replay FILE --db URL                 backfill a JSONL/CSV file; prints a JSON summary
    python -m core.feeds mqtt-ingest --db URL --mqtt URL      the MQTT ingest service (runs until SIGTERM)
    python -m core.feeds publish-sim --mqtt URL               the simulated hospital, published to the broker

Exit codes: 0 success; 2 unusable input or arguments (missing file, unreachable broker URL syntax).
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from datetime import datetime, timedelta, timezone

from core.config import Settings
from core.errors import FeedError, StorageError, WardsightError

log = logging.getLogger("core.feeds")


def _parser(cfg: Settings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.feeds", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="replay a JSONL or CSV file of reads into the store")
    rp.add_argument("file")
    rp.add_argument("--db", default=cfg.db_url, help="SQLAlchemy URL (default: WARDSIGHT_DB_URL)")
    ig = sub.add_parser("mqtt-ingest", help="subscribe to the site's topics and store every read once")
    ig.add_argument("--db", default=cfg.db_url, help="SQLAlchemy URL (default: WARDSIGHT_DB_URL)")
    ig.add_argument("--mqtt", default=cfg.mqtt_url, help="broker URL mqtt://host:port (default: WARDSIGHT_MQTT_URL)")
    ig.add_argument("--client-id", default=cfg.mqtt_client_id or f"wardsight-ingest-{cfg.site_id}",
                    help="fixed MQTT client id: the broker keeps this session's queue while we are down")
    ig.add_argument("--batch-s", type=float, default=cfg.ingest_batch_s, help="seconds per write batch")
    ig.add_argument("--batch-max", type=int, default=1000, help="messages per write batch at most")
    pb = sub.add_parser("publish-sim", help="run the simulator and publish its reads to the broker")
    pb.add_argument("--mqtt", default=cfg.mqtt_url, help="broker URL mqtt://host:port (default: WARDSIGHT_MQTT_URL)")
    pb.add_argument("--tick-s", type=float, default=cfg.sim_tick_s)
    pb.add_argument("--ticks", type=int, default=0, help="stop after this many ticks (0: run until SIGTERM)")
    pb.add_argument("--seed", type=int, default=cfg.sim_seed)
    pb.add_argument("--fault-rate", type=float, default=0.002, help="share of deliberately bad reads")
    pb.add_argument("--sign-db", help="sign each message with the reader keys stored in this database")
    pb.add_argument("--client-id", default=f"wardsight-sim-{cfg.site_id}")
    for sp in (rp, ig, pb):
        sp.add_argument("--site", default=cfg.site_id, help="site id in topics (default: WARDSIGHT_SITE)")
        sp.add_argument("--sample-dir", default=cfg.sample_dir, help="site description folder")
    return p


def _open_store(url: str, site, *, wait: bool):
    """Repository with the schema and the site's reference data; waits for the database when asked."""
    from core.feeds.buffer import Backoff
    from core.storage.repository import Repository
    backoff = Backoff(1.0, 30.0)
    while True:
        try:
            repo = Repository.from_url(url)
            repo.create_schema()
            repo.load_site(site)
            return repo
        except StorageError as exc:
            if not wait:
                raise
            delay = backoff.next_delay()
            log.warning("database not ready (%s); retry in %.0f s", str(exc)[:200], delay)
            time.sleep(delay)


def cmd_replay(args, cfg: Settings) -> int:
    from core.feeds.replay import replay_file
    from core.services import build_pipeline
    from core.site import load_site
    site = load_site(args.sample_dir)
    repo = _open_store(args.db, site, wait=False)
    pipe = build_pipeline(site, repo, cfg)
    summary = replay_file(args.file, pipe, wall_now=datetime.now(timezone.utc))
    print(json.dumps(summary.as_dict(), sort_keys=False))
    return 0


def cmd_ingest(args, cfg: Settings) -> int:
    from core.feeds.mqtt import MqttIngest
    from core.security import signing
    from core.services import build_pipeline
    from core.site import load_site
    site = load_site(args.sample_dir)
    repo = _open_store(args.db, site, wait=True)
    svc = MqttIngest(build_pipeline(site, repo, cfg), mqtt_url=args.mqtt, site_id=args.site, client_id=args.client_id,
                     batch_s=args.batch_s, batch_max=args.batch_max,
                     keys_loader=lambda: signing.load_reader_keys(repo.engine),
                     seq_loader=lambda: signing.load_last_seq(repo.engine),
                     seq_saver=lambda marks: signing.save_last_seq(repo.engine, marks))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: svc.stop())
    log.info("ingesting wardsight/%s/# from %s into %s", args.site, args.mqtt, args.db.split("@")[-1])
    svc.run(report_every_s=10.0)
    print(json.dumps(svc.status.__dict__, default=str), file=sys.stderr)
    return 0


def cmd_publish(args, cfg: Settings) -> int:
    from core.feeds.mqtt import Publisher, messages_for
    from core.feeds.simulator import HospitalSimulator
    from core.site import load_site
    site = load_site(args.sample_dir)
    keys = None
    if args.sign_db:
        from core.security import signing
        from core.storage.repository import Repository
        keys = {r: k[0] for r, k in signing.load_reader_keys(Repository.from_url(args.sign_db).engine).items()}
    sim = HospitalSimulator(site, seed=args.seed, fault_rate=args.fault_rate)
    pub = Publisher(args.mqtt, args.client_id)
    stop = {"flag": False}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.update(flag=True))
    # sequence numbers start from the wall clock so a restarted publisher never reuses one (replay guard)
    base_seq = int(time.time() * 1000)
    seq = {str(r): base_seq for r in site.readers["reader_id"].unique()} | {"sim-rtls": base_seq}
    tick, sent = 0, 0
    while not stop["flag"] and (args.ticks == 0 or tick < args.ticks):
        started = time.monotonic()
        now = datetime.now(timezone.utc)
        for topic, payload in messages_for(sim.step(now), args.site, now, seq, keys=keys):
            pub.publish(topic, payload)
            sent += 1
        tick += 1
        time.sleep(max(0.0, args.tick_s - (time.monotonic() - started)))
    ok = pub.wait_acked(30)
    pub.close()
    print(json.dumps({"ticks": tick, "messages": sent, "all_acknowledged": ok}))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    cfg = Settings.from_env()
    args = _parser(cfg).parse_args(argv)
    try:
        return {"replay": cmd_replay, "mqtt-ingest": cmd_ingest, "publish-sim": cmd_publish}[args.command](args, cfg)
    except (FeedError, StorageError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    except WardsightError as exc:
        print(json.dumps({"error": f"{exc.__class__.__name__}: {exc}"}), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
