"""The ``inter1srv`` command line."""

from __future__ import annotations

import argparse
import sys

from .config import ServerConfig
from .keys import KeyStore


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="keys, ledger and timelines (default ~/.local/share/inter1srv)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inter1srv", description="Self-hostable Inter-1 Streaming API server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start every process of a one-host server")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="worker processes (one per GPU; default 1)")
    serve.add_argument("--frontends", type=int, help="frontend processes sharing the port (default 1)")
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"])
    serve.add_argument("--max-sessions", type=int)
    serve.add_argument("--idle-timeout", type=int, dest="session_idle_timeout_seconds")
    serve.add_argument("--max-duration", type=int, dest="session_max_duration_seconds")
    serve.add_argument("--max-segment-bytes", type=int, dest="max_segment_size_bytes")

    for role in ("frontend", "sequencer", "worker"):
        p = sub.add_parser(role, help=f"run only the {role} role (systemd units use these)")
        _common(p)
        if role == "worker":
            p.add_argument("--id", help="worker id (default: from the pid)")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    create.add_argument("--max-concurrent", type=int, help="most live sessions at once for this key")
    create.add_argument("--max-session-seconds", type=int, help="longest session for this key")
    create.add_argument("--video-seconds-budget", type=float, help="media seconds this key may have analysed in all")
    _common(create)
    lst = keys_sub.add_parser("list", help="list keys (never their secrets)")
    _common(lst)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key")
    _common(revoke)

    from .client.stream_cmd import add_parser as add_stream
    from .report.cli import add_parser as add_report

    add_stream(sub)
    add_report(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stream":
        from .client.stream_cmd import run as stream_main

        return stream_main(args)
    if args.command == "report":
        from .report.cli import run as report_main

        return report_main(args)
    overrides = {k: v for k, v in vars(args).items() if k in ServerConfig.__dataclass_fields__}
    try:
        cfg = ServerConfig.from_env(**overrides)
    except ValueError as exc:  # a setting that cannot be used: say which, before anything starts
        print(f"inter1srv: {exc}", file=sys.stderr)
        return 2
    if args.command == "keys":
        return _keys(args, cfg)
    if args.command in ("serve", "sequencer", "worker"):
        from workers.thresholds import ModelSettingsError, model_settings

        try:
            model_settings()  # the operator's $INTER1SRV_MODEL_SETTINGS, checked before anything starts
        except ModelSettingsError as exc:
            print(f"inter1srv: {exc}", file=sys.stderr)
            return 2
    if args.command == "serve":
        from .supervisor import main as serve_main

        return serve_main(cfg)
    if args.command == "frontend":
        from .frontend.server import main as frontend_main

        frontend_main(cfg)
    elif args.command == "sequencer":
        from .sequencer.service import main as sequencer_main

        sequencer_main(cfg)
    elif args.command == "worker":
        from workers.service import main as worker_main

        worker_main(cfg, args.id)
    return 0


def _keys(args, cfg: ServerConfig) -> int:
    store = KeyStore(cfg.data_dir)
    if args.keys_command == "create":
        try:
            record, secret = store.create(args.name, max_concurrent=args.max_concurrent,
                                          max_session_seconds=args.max_session_seconds,
                                          video_seconds_budget=args.video_seconds_budget)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(secret)
        print(f"created {record.key_id} ({record.name}); the key is shown only once", file=sys.stderr)
    elif args.keys_command == "list":
        from .frontend.credentials import CredentialStore

        usage = CredentialStore(cfg.data_path)
        for r in store.list():
            caps = ",".join(f"{k}={v}" for k, v in r.caps.items() if v is not None) or "no caps"
            used = usage.usage(f"key:{r.key_id}")
            print(f"{r.key_id}\t{r.name}\t{'revoked' if r.revoked else 'active'}\t{caps}\tused={used}")
    elif args.keys_command == "revoke":
        if not store.revoke(args.key):
            print(f"no active key {args.key!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.key}", file=sys.stderr)
    return 0
