"""Kubernetes label selectors: parse the string form and match label maps.

Same grammar and meaning as ``kubectl get -l``: requirements joined by commas,
each ``key``, ``!key``, ``key=value`` (or ``==``), ``key!=value``,
``key in (a,b)`` or ``key notin (a,b)``.  As in Kubernetes, ``!=`` and
``notin`` also match objects that lack the key.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
_KEY_RE = re.compile(rf"^(?:{_PREFIX}/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^(?:{_NAME})?$")
_KEY = r"[^\s=!,()]+"
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_COMPARE = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*([^\s=!,()]*)$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")


class Operator(StrEnum):
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy this condition (Kubernetes semantics)."""
        present = self.key in labels
        if self.operator is Operator.EXISTS:
            return present
        if self.operator is Operator.DOES_NOT_EXIST:
            return not present
        if self.operator is Operator.IN:
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if len(self.values) == 1:
            sign = "=" if self.operator is Operator.IN else "!="
            return f"{self.key}{sign}{self.values[0]}"
        return f"{self.key} {self.operator.value} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must hold; an empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement holds for ``labels``."""
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __and__(self, other: LabelSelector) -> LabelSelector:
        return LabelSelector(self.requirements + other.requirements)


def parse_selector(text: str) -> LabelSelector:
    """Parse ``app=web,tier in (a,b),!canary``; raises ValueError naming the bad part."""
    parts = _split_top_level(text)
    requirements: list[Requirement] = []
    for part in parts:
        requirements.append(_parse_requirement(part.strip()))
    return LabelSelector(tuple(requirements))


def selector_from_labels(labels: Iterable[tuple[str, str]]) -> LabelSelector:
    """``matchLabels`` as a selector; raises ValueError on an invalid key or value."""
    requirements = []
    for key, value in labels:
        _check_key(key)
        _check_value(value, key)
        requirements.append(Requirement(key, Operator.IN, (value,)))
    return LabelSelector(tuple(requirements))


def parse_labels(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (a workload's labels, as ``-l`` takes them); raises ValueError."""
    labels: dict[str, str] = {}
    if not text.strip():
        return labels
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise ValueError(f"{part.strip()!r} is not a label: write key=value")
        _check_key(key)
        _check_value(value, key)
        labels[key] = value
    return labels


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    if not text.strip():
        raise ValueError("the selector is empty")
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_requirement(part: str) -> Requirement:
    if not part:
        raise ValueError("empty requirement (two commas in a row, or a trailing comma)")
    if found := _SET.match(part):
        key, op, raw = found.groups()
        _check_key(key)
        values = tuple(v.strip() for v in raw.split(","))
        if not raw.strip():
            raise ValueError(f"{part!r}: the set after {op!r} is empty")
        for value in values:
            _check_value(value, key)
        return Requirement(key, Operator.IN if op == "in" else Operator.NOT_IN, values)
    if found := _COMPARE.match(part):
        key, op, value = found.groups()
        _check_key(key)
        _check_value(value, key)
        return Requirement(key, Operator.NOT_IN if op == "!=" else Operator.IN, (value,))
    if found := _EXISTS.match(part):
        bang, key = found.groups()
        _check_key(key)
        return Requirement(key, Operator.DOES_NOT_EXIST if bang else Operator.EXISTS)
    raise ValueError(
        f"{part!r} is not a selector requirement: use key, !key, key=value, key!=value, "
        "key in (a,b) or key notin (a,b)"
    )


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key) or len(key.rpartition("/")[2]) > 63:
        raise ValueError(f"{key!r} is not a valid label key")


def _check_value(value: str, key: str) -> None:
    if not _VALUE_RE.match(value):
        raise ValueError(f"{value!r} is not a valid value for label {key!r}")
