"""Reading YAML settings files: syntax errors and repeated keys as ConfigError.

PyYAML keeps the last of two equal keys silently; a repeated key in a settings
file is almost always a mistake (two ``url:`` under one probe), so every one is
reported with its path and lines, and the loaders go on validating the document
so one run lists every mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, DuplicateKeysError, join_path


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors and duplicate keys become ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: <file>: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: <file>: not UTF-8 text: {exc.reason}"]) from exc
    return parse_yaml(text, str(path))


def read_yaml_all(path: str | Path) -> tuple[Any, list[str]]:
    """``read_yaml`` that returns the data despite duplicate keys, with those errors."""
    try:
        return read_yaml(path), []
    except DuplicateKeysError as exc:
        return exc.data, exc.errors


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely, refusing duplicate mapping keys (PyYAML keeps the last silently)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems: list[str] = []
        if node is not None:
            _find_duplicates(node, "", problems, set())
        data = loader.construct_document(node) if node is not None else None
        if problems:
            raise DuplicateKeysError([f"{source}: {p}" for p in problems], data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "<file>"
        raise ConfigError([f"{source}: {where}: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: <file>: {exc}"]) from exc
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _find_duplicates(node: yaml.Node, path: str, problems: list[str], seen: set[int]) -> None:
    """Report every repeated key with its path, walking the composed node tree."""
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            # Merge keys (<<) may be overridden by explicit keys: that is their purpose.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in first:
                    where = join_path(path, key_node.value) or "<root>"
                    problems.append(
                        f"{where}: duplicate key on line {line} "
                        f"(first defined on line {first[ident]})"
                    )
                else:
                    first[ident] = line
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            _find_duplicates(value_node, join_path(path, key), problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, join_path(path, index), problems, seen)
