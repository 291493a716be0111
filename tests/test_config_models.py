"""Rules every config model keeps (a new setting added in another style fails here)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from feedguard.core.catalog import Catalog
from feedguard.core.record import RecordConfig
from feedguard.core.schema import ConfigModel, ServiceSettings
from feedguard.exporter.config import ExporterConfig
from feedguard.responder.config import ResponderConfig

ROOTS = (ExporterConfig, ResponderConfig, RecordConfig, Catalog)


def _types(tp: Any) -> Iterator[Any]:
    yield tp
    if get_origin(tp) in (Annotated, typing.Union, types.UnionType, tuple, Mapping, dict):
        for arg in get_args(tp):
            yield from _types(arg)


def models() -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = list(ROOTS)
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.add(model)
        for field in model.model_fields.values():
            for tp in _types(field.annotation):
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    todo.append(tp)
    return found


def test_every_section_is_a_frozen_strict_config_model() -> None:
    for model in models():
        assert issubclass(model, ConfigModel | ServiceSettings), model
        assert model.model_config.get("frozen") is True, model
        assert model.model_config.get("strict") is True, model
        assert model.model_config.get("extra") == "forbid", model


def test_lists_are_items_so_yaml_lists_are_accepted() -> None:
    # Strict mode takes only tuples for tuple[...]: schema.Items relaxes that.
    for model in models():
        for name, field in model.model_fields.items():
            if get_origin(field.annotation) is tuple:
                relaxed = any(getattr(m, "strict", None) is False for m in field.metadata)
                assert relaxed, f"{model.__name__}.{name}: use Items[...] for a list"
