"""Build policies from inline YAML for tests (named a.yaml, b.yaml, ... in order)."""

from __future__ import annotations

import textwrap
from datetime import datetime

from controller.policy import Policy, PolicySource, load_policy_sources


def policy_from(*texts: str, defaults: bool = True) -> Policy:
    """Merge the texts (dedented) onto the shipped defaults, as files a.yaml, b.yaml, ..."""
    sources = [
        PolicySource(f"{chr(ord('a') + i)}.yaml", textwrap.dedent(text))
        for i, text in enumerate(texts)
    ]
    return load_policy_sources(sources, defaults=defaults)


def at(text: str) -> datetime:
    """An aware instant from RFC 3339 text."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment
