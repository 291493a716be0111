"""``feedguard-responder approve|deny INCIDENT STEP``: decide a step awaiting approval
through a running responder's API (the decision is recorded under the approver's
name that the token belongs to)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from .config import ResponderConfig

TOKEN_ENV = "FEEDGUARD_APPROVER_TOKEN"


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    for decision in ("approve", "deny"):
        cmd = sub.add_parser(
            decision,
            parents=[common],
            help=f"{decision} a step awaiting approval (through a running responder's API)",
        )
        cmd.add_argument("incident", help="incident id")
        cmd.add_argument("step", help="step id, e.g. firing:provider-down:1")
        cmd.add_argument(
            "--url",
            default=None,
            help="the responder (default: external_url from the config, else http://LISTEN)",
        )
        cmd.add_argument(
            "--token-file",
            default=None,
            help=f"file holding your approver token (default: ${TOKEN_ENV})",
        )


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"{args.token_file}: cannot read: {exc.strerror}") from None
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise SystemExit(f"no approver token: pass --token-file or set {TOKEN_ENV}")
    return token


def _base_url(config: ResponderConfig, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    if config.external_url:
        return str(config.external_url).rstrip("/")
    host, _, port = config.listen.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def decide(config: ResponderConfig, args: argparse.Namespace) -> int:
    """0 when decided; 1 when the responder refused (the reason on stderr); 2 on bad use."""
    try:
        token = _token(args)
    except SystemExit as exc:
        print(f"feedguard-responder {args.command}: {exc}", file=sys.stderr)
        return 2
    base = _base_url(config, args.url)
    url = (
        f"{base}/api/v1/incidents/{quote(args.incident, safe='')}"
        f"/steps/{quote(args.step, safe='')}/{args.command}"
    )
    request = urllib.request.Request(
        url, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # http(s) URL built above
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read() or b"{}").get("error") or exc.reason
        except ValueError:
            reason = exc.reason
        print(f"feedguard-responder {args.command}: HTTP {exc.code}: {reason}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"feedguard-responder {args.command}: {base}: {reason}", file=sys.stderr)
        return 1
    print(
        f"step {body.get('step')} of incident {body.get('id')}: {body.get('decision')} "
        f"by {body.get('by')} at {body.get('at_iso')}"
    )
    return 0
