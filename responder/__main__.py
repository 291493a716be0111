"""``feedguard-responder``: serve, check-config, simulate, approve, deny."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

from feedguard.core.cli import add_version, common_options, load_or_report, serve

from .config import ResponderConfig, load_config
from .decide_cli import add_commands, decide


def _parser() -> argparse.ArgumentParser:
    common = common_options("YAML settings file")
    parser = argparse.ArgumentParser(
        prog="feedguard-responder",
        description="Alertmanager webhook receiver that runs the external data outage runbook.",
        parents=[common],
    )
    add_version(parser)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", parents=[common], help="serve the webhook and API (the default)")
    check = sub.add_parser(
        "check-config", parents=[common], help="validate settings, catalog, playbooks; exit 2"
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also ask Airflow, Kubernetes, runtime-config, Slack and Alertmanager"
        " whether the targets exist (changes nothing); exit 2 on a problem",
    )
    check.add_argument(
        "--alertmanager-url", default=None, help="Alertmanager to check with --online"
    )
    simulate = sub.add_parser(
        "simulate", parents=[common], help="print the plan a webhook payload causes; runs nothing"
    )
    simulate.add_argument("payload", help="Alertmanager webhook JSON file ('-' for stdin)")
    add_commands(sub, common)
    return parser


async def _action_names(config: ResponderConfig) -> set[str] | None:
    from .actions import open_actions

    try:
        async with open_actions(config.actions, config.providers) as actions:
            return set(actions)
    except Exception as exc:  # clients that cannot start here do not make the config wrong
        print(f"warning: cannot open actions to check names: {exc}", file=sys.stderr)
        return None


def _check(config: ResponderConfig, source: str) -> int:
    names = asyncio.run(_action_names(config))
    errors = []
    if names is not None:
        for path, name in config.playbook_action_names():
            if name not in names:
                known = ", ".join(sorted(names)) or "none"
                errors.append(f"{source}: {path}: unknown action {name!r} (known: {known})")
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return 2
    print(
        f"ok: {len(config.playbooks)} playbooks, {len(config.providers.providers)} providers, "
        f"dry_run={'on' if config.dry_run else 'off'}, store={config.store.backend}"
    )
    return 0


def _check_online(config: ResponderConfig, alertmanager_url: str | None) -> int:
    from .online import run_online_checks

    checks = asyncio.run(run_online_checks(config, alertmanager_url))
    for check in checks:
        print(check.line())
    return 2 if any(c.status == "problem" for c in checks) else 0


async def _simulate(config: ResponderConfig, path: str) -> int:
    from .actions import open_actions
    from .payload import PayloadError, parse_notification
    from .plan import plan, rendered_notes

    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: ASYNC230, SIM115  # a CLI read before any serving
        data = json.loads(text)
        notification = parse_notification(data)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"{path}: invalid JSON: {exc}", file=sys.stderr)
        return 2
    except PayloadError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    if not config.playbooks:
        # Embedded defaults have no playbooks: everything would be "ignored".
        print(
            "warning: no playbooks configured, so nothing is planned; "
            "pass --config config/responder.yml for the runbook's playbooks",
            file=sys.stderr,
        )
    now = time.time()
    async with open_actions(config.actions, config.providers) as actions:
        result = plan(config, notification, actions, now)
    notes = rendered_notes(config, notification, result, now) if config.notes.enabled else []
    print(
        json.dumps(
            {"dry_run": True, "alerts": result, "notes": notes}, indent=2, ensure_ascii=False
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    config = load_or_report(lambda: load_config(getattr(args, "config", None)), args)
    if config is None:
        return 2
    if command == "check-config":
        status = _check(config, getattr(args, "config", None) or "<defaults>")
        if status == 0 and args.online:
            status = _check_online(config, args.alertmanager_url)
        return status
    if command == "simulate":
        return asyncio.run(_simulate(config, args.payload))
    if command in ("approve", "deny"):
        return decide(config, args)

    from .app import create_app, server_options

    return serve(
        config,
        lambda: create_app(config),
        __name__,
        trace_ids=config.tracing.enabled,
        **server_options(config),
    )


if __name__ == "__main__":
    sys.exit(main())
