"""The responder's own feature flags (``/runtime-config/v1/features/{name}``), kept in the store.

Known flags: ``dry_run`` (global dry run, overrides the config) and
``action.<name>`` (``enabled: false`` switches an action off; configuration
``{"dry_run": true}`` puts only that action in dry run).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .config import ResponderConfig
from .store import Store

KIND = "flag"


@dataclass(frozen=True)
class Modes:
    enabled: bool
    dry_run: bool
    why: str  # where dry_run / enabled came from, for the timeline


def known(name: str, actions: Mapping[str, object] | Collection[str]) -> bool:
    if name == "dry_run":
        return True
    prefix, _, action = name.partition(".")
    return prefix == "action" and action in actions


def default(config: ResponderConfig, name: str) -> dict[str, Any]:
    if name == "dry_run":
        return {"name": name, "enabled": config.dry_run, "configuration": {}, "source": "config"}
    action = name.partition(".")[2]
    options = config.action_options.get(action)
    enabled = options.enabled if options else True
    dry_run = options.dry_run if options else False
    return {
        "name": name,
        "enabled": enabled,
        "configuration": {"dry_run": dry_run},
        "source": "config",
    }


async def effective(config: ResponderConfig, store: Store, name: str) -> dict[str, Any]:
    stored = await store.get(KIND, name)
    if stored is not None:
        return {**stored, "source": "runtime"}
    return default(config, name)


async def modes(config: ResponderConfig, store: Store, action: str) -> Modes:
    glob = await effective(config, store, "dry_run")
    own = await effective(config, store, f"action.{action}")
    own_dry = bool((own.get("configuration") or {}).get("dry_run", False))
    if glob["enabled"]:
        return Modes(bool(own["enabled"]), True, f"global dry run ({glob['source']})")
    if own_dry:
        return Modes(bool(own["enabled"]), True, f"dry run for {action} ({own['source']})")
    return Modes(bool(own["enabled"]), False, f"live ({own['source']})")


def validate_body(body: Any) -> dict[str, Any]:
    """Check ``{"enabled": bool, "configuration": {...}}``; ValueError names the field."""
    if not isinstance(body, dict):
        raise ValueError("<root>: expected a JSON object")
    unknown = sorted(set(body) - {"enabled", "configuration"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected enabled, configuration)")
    if not isinstance(body.get("enabled"), bool):
        raise ValueError("enabled: required, true or false")
    configuration = body.get("configuration", {})
    if not isinstance(configuration, dict):
        raise ValueError("configuration: expected an object")
    if "dry_run" in configuration and not isinstance(configuration["dry_run"], bool):
        raise ValueError("configuration.dry_run: expected true or false")
    for key, item in configuration.items():
        # Flat: a nested value could be deep enough to break serialising it.
        if not (item is None or isinstance(item, str | int | float | bool)):
            raise ValueError(f"configuration.{key}: expected a string, number, boolean or null")
    return {"enabled": body["enabled"], "configuration": configuration}
