"""Operator commands (print JSON, exit 0 on success, 1 on a broken audit chain, 2 on an error):

    python -m core.security verify-audit [--db URL] [--anchor SEQ:HASH]
    python -m core.security purge [--db URL] [--older-than-days N] [--staff-history-hours H]
    python -m core.security roles-matrix          # the Markdown access matrix for the README
    python -m core.security demo-accounts         # the demo accounts table for the README
    python -m core.security demo-code nurse       # the demo account's current 6-digit code (demo only)

--db and the retention periods default to the settings (WARDSIGHT_DB_URL, WARDSIGHT_RAW_RETENTION_DAYS,
WARDSIGHT_STAFF_HISTORY_HOURS). The app also runs the purge itself once an hour (core.security.hooks).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone

from core.errors import WardsightError

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.security", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify-audit", help="check the audit log's hash chain")
    verify.add_argument("--db", help="SQLAlchemy URL of the store (default: WARDSIGHT_DB_URL)")
    verify.add_argument("--anchor", help="SEQ:HASH head recorded earlier (detects deleted newest rows)")
    purge = sub.add_parser("purge", help="apply the retention policy")
    purge.add_argument("--db", help="SQLAlchemy URL of the store (default: WARDSIGHT_DB_URL)")
    purge.add_argument("--older-than-days", type=float,
                       help="delete raw reads older than this (default: WARDSIGHT_RAW_RETENTION_DAYS)")
    purge.add_argument("--staff-history-hours", type=float,
                       help="fold staff movement older than this into hourly room counts "
                            "(default: WARDSIGHT_STAFF_HISTORY_HOURS)")
    sub.add_parser("roles-matrix", help="print the access matrix as Markdown")
    sub.add_parser("demo-accounts", help="print the demo accounts as Markdown")
    code = sub.add_parser("demo-code", help="print a demo account's current TOTP code (WARDSIGHT_DEMO only)")
    code.add_argument("username")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "roles-matrix":
        from core.security.roles import matrix_markdown
        print(matrix_markdown(), end="")
        return 0
    if args.command == "demo-accounts":
        from core.security.auth import demo_accounts_markdown
        print(demo_accounts_markdown(), end="")
        return 0
    from core.config import Settings
    cfg = Settings.from_env()
    if args.command == "demo-code":
        from core.security import totp
        from core.security.auth import DEMO_ACCOUNTS
        secrets = {u: sec for u, _, _, sec in DEMO_ACCOUNTS}
        if not cfg.demo_mode or args.username not in secrets:
            print(json.dumps({"error": "demo codes exist only for demo accounts with WARDSIGHT_DEMO on"}))
            return 2
        print(totp.code_at(secrets[args.username], datetime.now(timezone.utc)))
        return 0
    from core.security import audit, privacy, tables  # noqa: F401  (tables registers the schema)
    from core.storage.engine import make_engine
    try:
        engine = make_engine(args.db or cfg.db_url)
        if args.command == "verify-audit":
            anchor = None
            if args.anchor:
                seq, _, digest = args.anchor.partition(":")
                anchor = (int(seq), digest)
            result = audit.verify_chain(engine, anchor=anchor)
            print(json.dumps(result.to_dict()))
            return 0 if result.ok else 1
        now = datetime.now(timezone.utc)   # the CLI is the edge: the clock is read here, not in core
        days = cfg.raw_read_retention_days if args.older_than_days is None else args.older_than_days
        hours = cfg.staff_history_hours if args.staff_history_hours is None else args.staff_history_hours
        result = privacy.purge(engine, now, days, hours)
        print(json.dumps(result.to_dict()))
        return 0
    except (WardsightError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}))
        return 2


if __name__ == "__main__":
    sys.exit(main())
