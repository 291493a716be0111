"""One rule for relative paths in a configuration file: relative to the file's folder.

A path setting is a key ending in ``_file``, ``_path``, ``_dir`` or ``_json``,
or ``kubeconfig`` (``context_path``, a URL path, is not). After a config file is
loaded, every relative path setting in it, or given for it through the
environment, is joined to the folder of that file, so a config directory can
move as a whole and the working directory does not matter. Without a config
file (embedded defaults) relative paths stay relative to the working directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SUFFIXES = ("_file", "_path", "_dir", "_json")
NAMES = frozenset({"kubeconfig"})
NOT_PATHS = frozenset({"context_path", "catalog", "catalog_file"})  # catalog_file: its own rule


def is_path_setting(name: str) -> bool:
    return name not in NOT_PATHS and (name in NAMES or name.endswith(SUFFIXES))


def _fields(obj: object) -> list[str] | None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [f.name for f in dataclasses.fields(obj)]
    model_fields = getattr(type(obj), "model_fields", None)  # a pydantic model
    return list(model_fields) if isinstance(model_fields, dict) else None


def _replace(obj: T, updates: dict[str, Any]) -> T:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **updates)
    copied: T = obj.model_copy(update=updates)  # type: ignore[attr-defined]  # a pydantic model
    return copied


def resolve_paths(obj: T, base: Path) -> T:
    """``obj`` with every relative path setting (at any depth) joined to ``base``."""
    names = _fields(obj)
    if names is None:
        return obj
    updates: dict[str, Any] = {}
    for name in names:
        if name in NOT_PATHS:
            continue
        value = getattr(obj, name)
        if is_path_setting(name) and isinstance(value, str):
            relative = value and not Path(value).is_absolute()
            if relative and value != ":memory:" and not value.startswith("~"):
                updates[name] = str(base / value)
        elif _fields(value) is not None:
            resolved = resolve_paths(value, base)
            if resolved is not value:
                updates[name] = resolved
        elif isinstance(value, tuple) and any(_fields(item) is not None for item in value):
            # A list of sections (approvals.approvers[].token_file).
            items = tuple(resolve_paths(item, base) for item in value)
            if any(new is not old for new, old in zip(items, value, strict=True)):
                updates[name] = items
    return _replace(obj, updates) if updates else obj
