"""Checks of Kubernetes names and label selectors, for the catalog and the settings."""

from __future__ import annotations

import re
from typing import Annotated, Any

from .schema import check

_RFC1123 = "lowercase letters, digits, '-' and '.'"
# key: [prefix/]name; value: up to 63 of [A-Za-z0-9_.-] starting and ending alphanumeric.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def check_k8s_name(value: Any) -> str | None:
    text = str(value)
    ok = (
        0 < len(text) <= 253
        and text[0].isalnum()
        and text[-1].isalnum()
        and all(c.islower() or c.isdigit() or c in "-." for c in text)
    )
    return None if ok else f"must be a Kubernetes object name ({_RFC1123}), got {value!r}"


def check_label_selector(value: Any) -> str | None:
    """Equality-based selectors only (``a=b,c!=d``, ``a==b``): what ``kubectl logs -l`` takes
    in the runbook, and what the fake API server in the tests understands."""
    text = str(value)
    if not text.strip():
        return "must be a label selector such as app=external-collector, got ''"
    for term in text.split(","):
        key, op, val = _split_term(term.strip())
        if not op or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(val) or len(val) > 63:
            return (
                f"must be an equality label selector (key=value[,key!=value]), "
                f"bad term {term.strip()!r} in {value!r}"
            )
    return None


def parse_label_selector(text: str) -> list[tuple[str, str, str]]:
    """[(key, '=' or '!=', value)] of a selector that passed ``check_label_selector``."""
    terms = []
    for term in text.split(","):
        key, op, val = _split_term(term.strip())
        terms.append((key, "!=" if op == "!=" else "=", val))
    return terms


def _split_term(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        key, sep, val = term.partition(op)
        if sep:
            return key.strip(), op, val.strip()
    return term, "", ""


K8sName = Annotated[str, check(check_k8s_name)]
LabelSelector = Annotated[str, check(check_label_selector)]
