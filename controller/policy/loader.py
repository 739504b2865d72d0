"""Load policy files: parse with marks, merge in order, validate everything, build a Policy.

Each file is composed with ``yaml.compose`` so every node keeps its file, line
and column; every problem in every file is collected and raised together as
one :class:`~controller.errors.PolicyError` whose lines read
``FILE:LINE:COL field.path: message``.

Merge order: the shipped defaults first, then each file in the order given.
Maps merge key by key (the later file wins for a plain value); lists of named
items (``scopes``, and ``freeze`` inside a scope's rules) merge by ``name``: an
item whose name already exists is merged into it, a new name is appended; every
other list is replaced whole.  The merged tree is validated once, so a problem
is reported at the place in the file where the offending value was written.

Values are read from the text the user wrote, never from PyYAML's YAML 1.1
guesses: ``yes``/``no``/``on``/``off``/``y``/``n`` are refused where text or a
boolean is expected, only ``true``/``false`` are booleans, numbers are plain
decimals, ``18:00`` is a time of day and not the sexagesimal 1080.

This module reads files (that is its job); it makes no other I/O and no decision.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.durations import format_duration, parse_duration
from controller.errors import PolicyError
from controller.model import ActionKind, ChangeKind, Safety
from controller.policy.schema import (
    DEFAULT_APPROVAL_VALIDITY,
    GUARDED_ACTIONS,
    MAX_APPROVAL_VALIDITY,
    POLICY_VERSION,
    Approvals,
    BreakGlass,
    Confirmation,
    FreezeExceptions,
    FreezeWindow,
    GitOpsMode,
    Policy,
    PolicyScope,
    RateLimit,
    ScopeMatch,
    ScopeRules,
    Unattended,
    Weekday,
    WeeklyWindow,
)
from controller.policy.scoring import DEFAULT_PRIORS, ScoringSettings, ScoringWeights
from controller.policy.selectors import LabelSelector, parse_selector, selector_from_labels

if TYPE_CHECKING:
    from yaml.error import Mark
    from yaml.nodes import MappingNode, Node, SequenceNode

# How the shipped defaults are named in messages and in ``Policy.files``.
DEFAULT_POLICY_NAME = "(built-in) default-policy.yaml"
_DEFAULT_RESOURCE = "data/default-policy.yaml"

_YAML = "tag:yaml.org,2002:"
_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n", "true", "false"})
_INTEGER = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_NUMBER = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_NAMESPACE_GLOB = re.compile(r"^[a-z0-9*?\[\]!-]+$")
_CLOCK = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_WEIGHT_TOLERANCE = 1e-6
_MAX_VALIDITY_TEXT = format_duration(MAX_APPROVAL_VALIDITY, exact=True)

_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS: dict[str, Weekday] = {d.value: d for d in Weekday} | dict(
    zip(_FULL_DAY_NAMES, Weekday, strict=True)
)
_NOTIFY_KINDS = ("slack", "webhook", "email")
_NOTIFY_HELP = "use slack:#channel, webhook:https://host/path or email:name@example.com"

# Paths (with [] for "any list item") of lists whose items merge by name.
_NAMED_LISTS = frozenset({"scopes", "scopes[].rules.freeze"})

_ROOT_KEYS = ("version", "description", "scoring", "scopes")
_SCORING_KEYS = (
    "lookback",
    "closenessHalfLife",
    "knownGoodAfter",
    "weights",
    "priors",
    "migrationPaths",
    "migrationJobPatterns",
)
_SCOPE_KEYS = ("name", "description", "match", "rules")
_MATCH_KEYS = ("namespaces", "selector", "matchLabels")
_RULE_KEYS = (
    "actions",
    "confirmation",
    "approvals",
    "unattended",
    "rateLimit",
    "freeze",
    "breakGlass",
    "gitops",
    "riskyRequiresConfirmation",
    "notify",
)
_FREEZE_KEYS = ("name", "description", "start", "end", "weekly", "exceptions")
_WEEKLY_KEYS = ("days", "from", "to", "timezone")


@dataclass(frozen=True)
class PolicySource:
    """Policy text and the name to report it under (a path, or e.g. a ConfigMap key)."""

    name: str
    text: str


def load_policy(paths: Sequence[str | os.PathLike[str]] = (), *, defaults: bool = True) -> Policy:
    """Read, merge and validate policy files (after the shipped defaults unless ``defaults=False``).

    Raises PolicyError listing every problem in every file.
    """
    sources: list[PolicySource] = []
    unreadable: list[str] = []
    for path in paths:
        name = os.fspath(path)
        try:
            sources.append(PolicySource(name, Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            unreadable.append(f"{name}: no such file")
        except IsADirectoryError:
            unreadable.append(f"{name}: is a directory, not a policy file")
        except (OSError, UnicodeDecodeError) as err:
            unreadable.append(f"{name}: cannot read: {err}")
    try:
        policy = load_policy_sources(sources, defaults=defaults)
    except PolicyError as err:
        raise PolicyError(unreadable + err.problems) from None
    if unreadable:
        raise PolicyError(unreadable)
    return policy


def load_policy_sources(sources: Sequence[PolicySource], *, defaults: bool = True) -> Policy:
    """Like :func:`load_policy` for text already in memory (tests, a ConfigMap)."""
    if defaults:
        sources = [PolicySource(DEFAULT_POLICY_NAME, default_policy_text()), *sources]
    loader = _Loader([s.name for s in sources])
    roots: list[MappingNode] = []
    for source in sources:
        root = loader.compose(source)
        if root is not None:
            roots.append(root)
    policy = loader.build(roots) if roots else None
    if loader.problems:
        raise PolicyError(loader.formatted())
    assert policy is not None or not sources
    if policy is None:
        return Policy()
    return replace(policy, files=tuple(s.name for s in sources))


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The shipped defaults alone (what the tool uses when no policy is given)."""
    return load_policy_sources([])


def default_policy_text() -> str:
    """The packaged ``default-policy.yaml`` (the same bytes as ``policies/default.yaml``)."""
    return resources.files("controller").joinpath(_DEFAULT_RESOURCE).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# The loader: compose, pre-check per file, merge, validate the merged tree
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    file_rank: int
    line: int
    column: int
    text: str


_T = TypeVar("_T")


@dataclass
class _Loader:
    files: list[str]
    problems: list[_Problem] = field(default_factory=list)
    # id(scope or freeze node) -> its index in the file that wrote it, for field paths.
    item_index: dict[int, int] = field(default_factory=dict)
    # scope name -> "FILE:LINE" of each file that defined or changed it.
    scope_sources: dict[str, list[str]] = field(default_factory=dict)

    # -- reporting ---------------------------------------------------------

    def problem(self, node: Node | Mark, path: str, message: str) -> None:
        mark = node if not hasattr(node, "start_mark") else node.start_mark
        self._add(mark, f"{path}: {message}" if path else message)

    def _add(self, mark: Mark, text: str) -> None:
        name = str(mark.name)
        rank = self.files.index(name) if name in self.files else len(self.files)
        self.problems.append(
            _Problem(
                rank,
                mark.line + 1,
                mark.column + 1,
                f"{name}:{mark.line + 1}:{mark.column + 1} {text}",
            )
        )

    def formatted(self) -> list[str]:
        ordered = sorted(self.problems, key=lambda p: (p.file_rank, p.line, p.column))
        unique: list[str] = []
        for problem in ordered:
            if problem.text not in unique:
                unique.append(problem.text)
        return unique

    # -- composing one file --------------------------------------------------

    def compose(self, source: PolicySource) -> MappingNode | None:
        import yaml
        from yaml.nodes import MappingNode

        try:
            documents = list(yaml.compose_all(source.text, Loader=_named_loader(source.name)))
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            message = f"(yaml): {err.problem or err.context}"
            if mark is None:
                self.problems.append(
                    _Problem(self.files.index(source.name), 0, 0, f"{source.name}: {message}")
                )
            else:
                self._add(mark, message)
            return None
        except yaml.YAMLError as err:
            self.problems.append(
                _Problem(self.files.index(source.name), 0, 0, f"{source.name}: (yaml): {err}")
            )
            return None
        if not documents or _is_null(documents[0]):
            self._add(
                _start_mark(source.name),
                "(root): the file is empty; a policy starts with 'version: 1'",
            )
            return None
        if len(documents) > 1:
            self.problem(
                documents[1],
                "(root)",
                "one policy per file: remove the second document (after ---)",
            )
        root = documents[0]
        if not isinstance(root, MappingNode):
            self.problem(root, "(root)", f"a policy is a mapping of fields, got {_describe(root)}")
            return None
        if not self._precheck(root, "", set()):
            return None
        self._check_version(root)
        self._index_named_items(root, source.name)
        return root

    def _precheck(self, node: Node, path: str, visited: set[int]) -> bool:
        """Duplicate keys, merge keys, aliases and custom tags, anywhere in one file.

        Returns False when the file uses aliases: the composer shares aliased
        nodes (or makes them recursive), so such a file is not walked further.
        """
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode

        if id(node) in visited:
            self.problem(
                node,
                path or "(root)",
                "is an alias (*name) of the value anchored here; "
                "aliases are not supported: write it out",
            )
            return False
        visited.add(id(node))
        if not node.tag.startswith(_YAML):
            self.problem(node, path or "(root)", f"unknown YAML tag {node.tag!r}; remove it")
        if isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == _YAML + "merge":
                    self.problem(
                        key,
                        path or "(root)",
                        "YAML merge keys (<<) are not supported; write the fields out",
                    )
                    continue
                if not isinstance(key, ScalarNode):
                    self.problem(key, path or "(root)", "keys must be plain names")
                    continue
                child = _join(path, key.value)
                if key.value in seen:
                    self.problem(
                        key, child, f"duplicate key (first written on line {seen[key.value]})"
                    )
                else:
                    seen[key.value] = key.start_mark.line + 1
                if not self._precheck(value, child, visited):
                    return False
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                if not self._precheck(item, f"{path}[{i}]", visited):
                    return False
        return True

    def _check_version(self, root: MappingNode) -> None:
        pairs = _pairs(root)
        if "version" not in pairs:
            self.problem(
                root, "version", f"is required: start the file with 'version: {POLICY_VERSION}'"
            )
            return
        node = pairs["version"][1]
        value = self.integer(node, "version", minimum=0)
        if value is not None and value != POLICY_VERSION:
            self.problem(
                node,
                "version",
                f"unsupported version {value}; this rollback reads version {POLICY_VERSION}",
            )

    def _index_named_items(self, root: MappingNode, name: str) -> None:
        """Remember each scope's and freeze window's index in its own file; flag duplicate names."""
        from yaml.nodes import MappingNode, SequenceNode

        scopes = _pairs(root).get("scopes")
        if scopes is None or not isinstance(scopes[1], SequenceNode):
            return
        self._check_named_list(scopes[1], "scopes")
        for i, scope in enumerate(scopes[1].value):
            self.item_index[id(scope)] = i
            scope_name = _item_name(scope)
            if scope_name is not None:
                self.scope_sources.setdefault(scope_name, []).append(
                    f"{name}:{scope.start_mark.line + 1}"
                )
            rules = _pairs(scope).get("rules") if isinstance(scope, MappingNode) else None
            if rules is None or not isinstance(rules[1], MappingNode):
                continue
            freeze = _pairs(rules[1]).get("freeze")
            if freeze is not None and isinstance(freeze[1], SequenceNode):
                self._check_named_list(freeze[1], f"scopes[{i}].rules.freeze")
                for j, window in enumerate(freeze[1].value):
                    self.item_index[id(window)] = j

    def _check_named_list(self, node: SequenceNode, path: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(node.value):
            name = _item_name(item)
            if name is None:
                continue
            if name in seen:
                self.problem(
                    _pairs(item)["name"][1],
                    f"{path}[{i}].name",
                    f"{name!r} is already used by {path}[{seen[name]}]; names must be unique "
                    "in a file (across files, items with the same name merge)",
                )
            else:
                seen[name] = i

    # -- merging -------------------------------------------------------------

    def merge(self, base: Node, over: Node, path: str) -> Node:
        """``over`` on top of ``base``: maps by key, named lists by name, anything else replaced."""
        from yaml.nodes import MappingNode, SequenceNode

        if isinstance(base, MappingNode) and isinstance(over, MappingNode):
            pairs = list(base.value)
            where = {k.value: i for i, (k, _) in enumerate(pairs) if _is_scalar(k)}
            for key, value in over.value:
                if not _is_scalar(key):
                    pairs.append((key, value))
                    continue
                child = f"{path}.{key.value}" if path else key.value
                if key.value in where:
                    i = where[key.value]
                    pairs[i] = (key, self.merge(pairs[i][1], value, child))
                else:
                    where[key.value] = len(pairs)
                    pairs.append((key, value))
            merged = MappingNode(over.tag, pairs, over.start_mark, over.end_mark)
            if id(over) in self.item_index:
                self.item_index[id(merged)] = self.item_index[id(over)]
            return merged
        if (
            path in _NAMED_LISTS
            and isinstance(base, SequenceNode)
            and isinstance(over, SequenceNode)
        ):
            items = list(base.value)
            # Only earlier files' items are merge targets: a name repeated within
            # one file is an error (reported per file), not a silent merge.
            where = {n: i for i, item in enumerate(items) if (n := _item_name(item)) is not None}
            for item in over.value:
                name = _item_name(item)
                if name is not None and name in where:
                    i = where.pop(name)
                    items[i] = self.merge(items[i], item, path + "[]")
                else:
                    items.append(item)
            return SequenceNode(over.tag, items, over.start_mark, over.end_mark)
        return over

    # -- building the typed policy ------------------------------------------

    def build(self, roots: list[MappingNode]) -> Policy | None:
        merged: Node = roots[0]
        for root in roots[1:]:
            merged = self.merge(merged, root, "")
        assert hasattr(merged, "value")
        fields = self.mapping(merged, "", _ROOT_KEYS)
        if fields is None:
            return None
        scoring = ScoringSettings()
        if "scoring" in fields:
            scoring = self.scoring(fields["scoring"], "scoring") or scoring
        if "description" in fields:
            self.string(fields["description"], "description", allow_empty=True)
        scopes: list[PolicyScope] = []
        if "scopes" in fields:
            items = self.sequence(fields["scopes"], "scopes")
            for position, node in enumerate(items or []):
                path = f"scopes[{self.item_index.get(id(node), position)}]"
                scope = self.scope(node, path)
                if scope is not None:
                    scopes.append(scope)
        return Policy(version=POLICY_VERSION, scoring=scoring, scopes=tuple(scopes))

    def scoring(self, node: Node, path: str) -> ScoringSettings | None:
        fields = self.mapping(node, path, _SCORING_KEYS)
        if fields is None:
            return None
        base = ScoringSettings()
        changes: dict[str, Any] = {}
        for key, attr in (
            ("lookback", "lookback"),
            ("closenessHalfLife", "closeness_half_life"),
            ("knownGoodAfter", "known_good_after"),
        ):
            if key in fields:
                value = self.duration(fields[key], f"{path}.{key}")
                if value is not None:
                    changes[attr] = value
        if "weights" in fields:
            weights = self.weights(fields["weights"], f"{path}.weights")
            if weights is not None:
                changes["weights"] = weights
        if "priors" in fields:
            priors = self.priors(fields["priors"], f"{path}.priors")
            if priors is not None:
                changes["priors"] = priors
        if "migrationPaths" in fields:
            globs = self.strings(fields["migrationPaths"], f"{path}.migrationPaths")
            if globs is not None:
                changes["migration_paths"] = tuple(globs)
        if "migrationJobPatterns" in fields:
            key_path = f"{path}.migrationJobPatterns"
            patterns = self.strings(fields["migrationJobPatterns"], key_path)
            items = self.sequence(fields["migrationJobPatterns"], key_path) or []
            for i, (pattern, item) in enumerate(zip(patterns or [], items, strict=False)):
                if pattern != pattern.lower():
                    self.problem(
                        item,
                        f"{key_path}[{i}]",
                        f"write {pattern.lower()!r} in lower case (matching ignores case)",
                    )
            if patterns is not None:
                changes["migration_job_patterns"] = tuple(patterns)
        return replace(base, **changes)

    def weights(self, node: Node, path: str) -> ScoringWeights | None:
        names = ("closeness", "scope", "health", "prior")
        fields = self.mapping(node, path, names)
        if fields is None:
            return None
        defaults = ScoringWeights()
        values: dict[str, float] = {}
        ok = True
        for name in names:
            if name in fields:
                value = self.number(fields[name], f"{path}.{name}", 0.0, 1.0)
                ok = ok and value is not None
                values[name] = value if value is not None else getattr(defaults, name)
            else:
                values[name] = getattr(defaults, name)
        total = math.fsum(values.values())
        if ok and abs(total - 1.0) > _WEIGHT_TOLERANCE:
            self.problem(node, path, f"the weights must add up to 1; they add up to {total:g}")
            return None
        return ScoringWeights(**values) if ok else None

    def priors(self, node: Node, path: str) -> Mapping[ChangeKind, float] | None:
        kinds = tuple(k.value for k in ChangeKind)
        fields = self.mapping(node, path, kinds)
        if fields is None:
            return None
        priors = dict(DEFAULT_PRIORS)
        for name, value_node in fields.items():
            value = self.number(value_node, f"{path}.{name}", 0.0, 1.0)
            if value is not None:
                priors[ChangeKind(name)] = value
        return priors

    def scope(self, node: Node, path: str) -> PolicyScope | None:
        fields = self.mapping(node, path, _SCOPE_KEYS, required=("name", "match", "rules"))
        if fields is None:
            return None
        name = self.name(fields["name"], f"{path}.name") if "name" in fields else None
        description = ""
        if "description" in fields:
            description = (
                self.string(fields["description"], f"{path}.description", allow_empty=True) or ""
            )
        match = self.match(fields["match"], f"{path}.match") if "match" in fields else None
        rules = self.rules(fields["rules"], f"{path}.rules") if "rules" in fields else None
        if name is None or match is None or rules is None:
            return None
        return PolicyScope(
            name=name,
            match=match,
            rules=rules,
            description=description,
            sources=tuple(self.scope_sources.get(name, ())),
        )

    def match(self, node: Node, path: str) -> ScopeMatch | None:
        fields = self.mapping(node, path, _MATCH_KEYS, required=("namespaces",))
        if fields is None:
            return None
        namespaces = None
        if "namespaces" in fields:
            namespaces = self.namespace_globs(fields["namespaces"], f"{path}.namespaces")
        selector: LabelSelector | None = None
        ok = True
        if "selector" in fields:
            text = self.string(fields["selector"], f"{path}.selector")
            if text is None:
                ok = False
            else:
                try:
                    selector = parse_selector(text)
                except ValueError as err:
                    self.problem(fields["selector"], f"{path}.selector", str(err))
                    ok = False
        if "matchLabels" in fields:
            labels = self.string_map(fields["matchLabels"], f"{path}.matchLabels")
            if labels is None:
                ok = False
            else:
                try:
                    from_labels = selector_from_labels(labels.items())
                except ValueError as err:
                    self.problem(fields["matchLabels"], f"{path}.matchLabels", str(err))
                    ok = False
                else:
                    selector = from_labels if selector is None else selector & from_labels
        if namespaces is None or not ok:
            return None
        return ScopeMatch(tuple(namespaces), selector)

    def namespace_globs(self, node: Node, path: str) -> list[str] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        if not items:
            self.problem(node, path, "list at least one namespace or glob ('*' for all)")
            return None
        globs: list[str] = []
        for i, item in enumerate(items):
            glob = self.string(item, f"{path}[{i}]")
            if glob is None:
                continue
            if not _NAMESPACE_GLOB.match(glob):
                self.problem(
                    item,
                    f"{path}[{i}]",
                    f"{glob!r} can never match: namespace names use lower-case letters, "
                    "digits and '-' (globs may add * ? [ ])",
                )
                continue
            globs.append(glob)
        return globs if len(globs) == len(items) else None

    def rules(self, node: Node, path: str) -> ScopeRules | None:
        fields = self.mapping(node, path, _RULE_KEYS)
        if fields is None:
            return None
        ok = True

        def read(key: str, reader: Callable[[Node, str], _T | None]) -> _T | None:
            nonlocal ok
            if key not in fields:
                return None
            value = reader(fields[key], f"{path}.{key}")
            ok = ok and value is not None
            return value

        actions = read("actions", self.actions)
        confirmation = read("confirmation", lambda n, p: self.choice(n, p, Confirmation))
        approvals = read("approvals", self.approvals)
        unattended = read("unattended", self.unattended)
        rate_limit = read("rateLimit", self.rate_limit)
        freeze = read("freeze", self.freeze_list)
        break_glass = read("breakGlass", self.break_glass)
        gitops = read("gitops", lambda n, p: self.choice(n, p, GitOpsMode))
        risky = read("riskyRequiresConfirmation", self.boolean)
        notify = read("notify", self.notify)
        if not ok:
            return None
        return ScopeRules(
            actions=tuple(actions) if actions is not None else None,
            confirmation=confirmation,
            approvals=approvals,
            unattended=unattended,
            rate_limit=rate_limit,
            freeze=tuple(freeze or ()),
            break_glass=break_glass,
            gitops=gitops,
            risky_requires_confirmation=risky,
            notify=tuple(notify or ()),
        )

    def actions(self, node: Node, path: str) -> list[ActionKind] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        names = [a.value for a in GUARDED_ACTIONS]
        actions: list[ActionKind] = []
        ok = True
        for i, item in enumerate(items):
            value = self.choice(item, f"{path}[{i}]", ActionKind, allowed=names)
            if value is None:
                ok = False
            elif value in actions:
                self.problem(item, f"{path}[{i}]", f"{value.value} is listed twice")
                ok = False
            else:
                actions.append(value)
        return actions if ok else None

    def approvals(self, node: Node, path: str) -> Approvals | None:
        fields = self.mapping(node, path, ("count", "approvers", "validFor"), required=("count",))
        if fields is None or "count" not in fields:
            return None
        count = self.integer(fields["count"], f"{path}.count", minimum=0)
        approvers: list[str] | None = []
        if "approvers" in fields:
            approvers = self.strings(fields["approvers"], f"{path}.approvers")
        valid_for: timedelta | None = DEFAULT_APPROVAL_VALIDITY
        if "validFor" in fields:
            valid_for = self.duration(fields["validFor"], f"{path}.validFor")
            if valid_for is not None and valid_for > MAX_APPROVAL_VALIDITY:
                self.problem(
                    fields["validFor"],
                    f"{path}.validFor",
                    f"must be at most {_MAX_VALIDITY_TEXT}, got "
                    f"{_scalar_text(fields['validFor']).strip()}",
                )
                valid_for = None
        if count is None or approvers is None or valid_for is None:
            return None
        if count == 0 and approvers:
            self.problem(
                fields["approvers"],
                f"{path}.approvers",
                "approvers are listed but count is 0; set count",
            )
            return None
        return Approvals(count, tuple(approvers), valid_for)

    def unattended(self, node: Node, path: str) -> Unattended | None:
        fields = self.mapping(node, path, ("allowed", "verdicts"), required=("allowed",))
        if fields is None or "allowed" not in fields:
            return None
        allowed = self.boolean(fields["allowed"], f"{path}.allowed")
        verdicts: list[Safety] | None = [Safety.SAFE]
        if "verdicts" in fields:
            verdicts = self.verdicts(fields["verdicts"], f"{path}.verdicts")
            if verdicts is not None and allowed and not verdicts:
                self.problem(
                    fields["verdicts"],
                    f"{path}.verdicts",
                    "allowed is true, so list at least one verdict (safe, risky)",
                )
                return None
        if allowed is None or verdicts is None:
            return None
        return Unattended(allowed, tuple(verdicts))

    def verdicts(self, node: Node, path: str) -> list[Safety] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        verdicts: list[Safety] = []
        ok = True
        for i, item in enumerate(items):
            value = self.choice(item, f"{path}[{i}]", Safety)
            if value is Safety.UNSAFE:
                self.problem(
                    item,
                    f"{path}[{i}]",
                    "an unsafe verdict is never acted on unattended; list safe and/or risky",
                )
                ok = False
            elif value is None:
                ok = False
            elif value not in verdicts:
                verdicts.append(value)
        return verdicts if ok else None

    def rate_limit(self, node: Node, path: str) -> RateLimit | None:
        fields = self.mapping(node, path, ("maxActions", "per"), required=("maxActions",))
        if fields is None or "maxActions" not in fields:
            return None
        count = self.integer(fields["maxActions"], f"{path}.maxActions", minimum=0)
        per: timedelta | None = timedelta(hours=1)
        if "per" in fields:
            per = self.duration(fields["per"], f"{path}.per")
        if count is None or per is None:
            return None
        return RateLimit(count, per)

    def break_glass(self, node: Node, path: str) -> BreakGlass | None:
        fields = self.mapping(node, path, ("allowed", "requireReason"), required=("allowed",))
        if fields is None or "allowed" not in fields:
            return None
        allowed = self.boolean(fields["allowed"], f"{path}.allowed")
        require: bool | None = True
        if "requireReason" in fields:
            require = self.boolean(fields["requireReason"], f"{path}.requireReason")
        if allowed is None or require is None:
            return None
        return BreakGlass(allowed, require)

    def notify(self, node: Node, path: str) -> list[str] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        targets: list[str] = []
        ok = True
        for i, item in enumerate(items):
            target = self.string(item, f"{path}[{i}]")
            if target is None:
                ok = False
                continue
            problem = _notify_problem(target)
            if problem:
                self.problem(item, f"{path}[{i}]", problem)
                ok = False
            elif target not in targets:
                targets.append(target)
        return targets if ok else None

    def freeze_list(self, node: Node, path: str) -> list[FreezeWindow] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        windows: list[FreezeWindow] = []
        ok = True
        for position, item in enumerate(items):
            window = self.freeze(item, f"{path}[{self.item_index.get(id(item), position)}]")
            ok = ok and window is not None
            if window is not None:
                windows.append(window)
        return windows if ok else None

    def freeze(self, node: Node, path: str) -> FreezeWindow | None:
        fields = self.mapping(node, path, _FREEZE_KEYS, required=("name",))
        if fields is None:
            return None
        name = self.name(fields["name"], f"{path}.name") if "name" in fields else None
        if "description" in fields:
            self.string(fields["description"], f"{path}.description", allow_empty=True)
        exceptions: FreezeExceptions | None = FreezeExceptions()
        if "exceptions" in fields:
            exceptions = self.exceptions(fields["exceptions"], f"{path}.exceptions")
        fixed = "start" in fields or "end" in fields
        if fixed and "weekly" in fields:
            self.problem(
                fields["weekly"], f"{path}.weekly", "use either start/end or weekly, not both"
            )
            return None
        if "weekly" in fields:
            weekly = self.weekly(fields["weekly"], f"{path}.weekly")
            if name is None or weekly is None or exceptions is None:
                return None
            return FreezeWindow(name, weekly=weekly, exceptions=exceptions)
        if not fixed:
            self.problem(node, path, "give start and end (RFC 3339), or weekly")
            return None
        for key in ("start", "end"):
            if key not in fields:
                self.problem(
                    node,
                    f"{path}.{key}",
                    "is required with " + ("end" if key == "start" else "start"),
                )
        start = self.instant(fields["start"], f"{path}.start") if "start" in fields else None
        end = self.instant(fields["end"], f"{path}.end") if "end" in fields else None
        if start is None or end is None or name is None or exceptions is None:
            return None
        if end <= start:
            self.problem(fields["end"], f"{path}.end", "must be after start")
            return None
        return FreezeWindow(name, start=start, end=end, exceptions=exceptions)

    def exceptions(self, node: Node, path: str) -> FreezeExceptions | None:
        fields = self.mapping(node, path, ("actions", "breakGlass"))
        if fields is None:
            return None
        actions: list[ActionKind] | None = []
        if "actions" in fields:
            actions = self.actions(fields["actions"], f"{path}.actions")
        glass: bool | None = False
        if "breakGlass" in fields:
            glass = self.boolean(fields["breakGlass"], f"{path}.breakGlass")
        if actions is None or glass is None:
            return None
        return FreezeExceptions(tuple(actions), glass)

    def weekly(self, node: Node, path: str) -> WeeklyWindow | None:
        fields = self.mapping(node, path, _WEEKLY_KEYS, required=_WEEKLY_KEYS)
        if fields is None:
            return None
        days = self.weekdays(fields["days"], f"{path}.days") if "days" in fields else None
        start = self.clock(fields["from"], f"{path}.from") if "from" in fields else None
        end = self.clock(fields["to"], f"{path}.to", allow_24=True) if "to" in fields else None
        tz = self.timezone(fields["timezone"], f"{path}.timezone") if "timezone" in fields else None
        if days is None or start is None or end is None or tz is None:
            return None
        end_of_day = end == time(0) and _scalar_text(fields["to"]).strip() == "24:00"
        if start == end and not end_of_day:
            self.problem(
                fields["to"],
                f"{path}.to",
                'equals from; for a whole day write from: "00:00" and to: "24:00"',
            )
            return None
        return WeeklyWindow(tuple(days), start, end, tz, end_of_day)

    def weekdays(self, node: Node, path: str) -> list[Weekday] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        if not items:
            self.problem(node, path, "list at least one day (mon, tue, wed, thu, fri, sat, sun)")
            return None
        days: list[Weekday] = []
        ok = True
        for i, item in enumerate(items):
            text = self.string(item, f"{path}[{i}]")
            if text is None:
                ok = False
                continue
            day = _WEEKDAYS.get(text.lower())
            if day is None:
                self.problem(
                    item, f"{path}[{i}]", _unknown(text, [d.value for d in Weekday], "day")
                )
                ok = False
            elif day in days:
                self.problem(item, f"{path}[{i}]", f"{day.value} is listed twice")
                ok = False
            else:
                days.append(day)
        return days if ok else None

    # -- scalars -------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        known: Sequence[str],
        required: Iterable[str] = (),
    ) -> dict[str, Node] | None:
        """The fields of a mapping; reports unknown keys (with a suggestion) and missing ones."""
        from yaml.nodes import MappingNode

        if not isinstance(node, MappingNode):
            self.problem(
                node, path or "(root)", f"must be a mapping of fields, got {_describe(node)}"
            )
            return None
        fields: dict[str, Node] = {}
        for key, value in node.value:
            if not _is_scalar(key) or key.tag == _YAML + "merge":
                continue  # reported by the per-file pre-check
            if key.value not in known:
                self.problem(key, _join(path, key.value), _unknown(key.value, known, "field"))
                continue
            fields.setdefault(key.value, value)
        for name in required:
            if name not in fields:
                self.problem(node, _join(path, name), "is required")
        return fields

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        from yaml.nodes import SequenceNode

        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"must be a list, got {_describe(node)}")
            return None
        return list(node.value)

    def string(self, node: Node, path: str, *, allow_empty: bool = False) -> str | None:
        text = self._text(node, path, "text")
        if text is None:
            return None
        if not allow_empty and not text.strip():
            self.problem(node, path, "must not be empty")
            return None
        return text

    def strings(self, node: Node, path: str) -> list[str] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        values = [self.string(item, f"{path}[{i}]") for i, item in enumerate(items)]
        if any(v is None for v in values):
            return None
        return [v for v in values if v is not None]

    def string_map(self, node: Node, path: str) -> dict[str, str] | None:
        from yaml.nodes import MappingNode

        if not isinstance(node, MappingNode):
            self.problem(node, path, f"must be a mapping of label: value, got {_describe(node)}")
            return None
        labels: dict[str, str] = {}
        ok = True
        for key, value in node.value:
            if not _is_scalar(key):
                continue
            text = self._text(value, _join(path, key.value), "text")
            if text is None:
                ok = False
            else:
                labels[key.value] = text
        return labels if ok else None

    def name(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is not None and not _DNS_LABEL.match(text):
            self.problem(
                node, path, f"{text!r} is not a valid name: use lower-case letters, digits and '-'"
            )
            return None
        return text

    def choice(
        self,
        node: Node,
        path: str,
        enum: type[_E],
        allowed: Sequence[str] | None = None,
    ) -> _E | None:
        names = list(allowed) if allowed is not None else [e.value for e in enum]
        text = self._text(node, path, "one of: " + ", ".join(names))
        if text is None:
            return None
        if text not in names:
            self.problem(node, path, _unknown(text, names, "value"))
            return None
        return enum(text)

    def boolean(self, node: Node, path: str) -> bool | None:
        if not _is_scalar(node) or _is_null(node):
            self.problem(node, path, f"must be true or false, got {_describe(node)}")
            return None
        text = str(node.value)
        if _plain(node) and text in ("true", "false"):
            return text == "true"
        if _plain(node) and text.lower() in _YAML11_BOOLEANS:
            self.problem(
                node,
                path,
                f"{text!r} is ambiguous (YAML 1.1 reads it as a boolean); write true or false",
            )
        elif not _plain(node) and text.lower() in ("true", "false"):
            self.problem(node, path, f"must be true or false without quotes, got the text {text!r}")
        else:
            self.problem(node, path, f"must be true or false, got {_describe(node)}")
        return None

    def integer(self, node: Node, path: str, *, minimum: int) -> int | None:
        if (
            not _is_scalar(node)
            or _is_null(node)
            or not _plain(node)
            or not _INTEGER.match(node.value)
        ):
            hint = ""
            if _is_scalar(node) and re.fullmatch(r"-?0[0-9]+", node.value):
                hint = " (a leading zero makes YAML 1.1 read octal; drop it)"
            self.problem(node, path, f"must be a whole number, got {_describe(node)}{hint}")
            return None
        value = int(node.value)
        if value < minimum:
            self.problem(node, path, f"must be {minimum} or more, got {value}")
            return None
        return value

    def number(self, node: Node, path: str, low: float, high: float) -> float | None:
        if (
            not _is_scalar(node)
            or _is_null(node)
            or not _plain(node)
            or not _NUMBER.match(node.value)
        ):
            self.problem(node, path, f"must be a number, got {_describe(node)}")
            return None
        value = float(node.value)
        if not low <= value <= high:
            self.problem(node, path, f"must be between {low:g} and {high:g}, got {value:g}")
            return None
        return value

    def duration(self, node: Node, path: str) -> timedelta | None:
        text = self._text(node, path, "a duration like 15m or 1h30m")
        if text is None:
            return None
        try:
            value = parse_duration(text)
        except ValueError as err:
            self.problem(node, path, str(err))
            return None
        if value <= timedelta(0):
            self.problem(node, path, "must be longer than zero")
            return None
        return value

    def instant(self, node: Node, path: str) -> datetime | None:
        text = self._text(node, path, "an RFC 3339 time")
        if text is None:
            return None
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            self.problem(
                node, path, f"{text!r} is not an RFC 3339 time like 2026-12-20T00:00:00+01:00"
            )
            return None
        if value.tzinfo is None:
            self.problem(node, path, f"{text!r} has no offset: add Z or one like +01:00")
            return None
        return value

    def clock(self, node: Node, path: str, *, allow_24: bool = False) -> time | None:
        text = self._text(node, path, "a time of day like 18:00")
        if text is None:
            return None
        if allow_24 and text.strip() == "24:00":
            return time(0)
        found = _CLOCK.match(text.strip())
        if found is None:
            limit = "24:00" if allow_24 else "23:59"
            self.problem(
                node, path, f"{text!r} is not a time of day: write HH:MM from 00:00 to {limit}"
            )
            return None
        return time(int(found.group(1)), int(found.group(2)))

    def timezone(self, node: Node, path: str) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            if text in ("localtime", "posixrules") or text != text.strip():
                raise ZoneInfoNotFoundError(text)
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(node, path, f"{text!r} is not an IANA timezone like Europe/Berlin or UTC")
            return None
        return text

    def _text(self, node: Node, path: str, expected: str) -> str | None:
        """A scalar's text as written; refuses nothing, maps, lists and YAML 1.1 booleans."""
        if not _is_scalar(node) or _is_null(node):
            self.problem(node, path, f"must be {expected}, got {_describe(node)}")
            return None
        if _plain(node) and node.value.lower() in _YAML11_BOOLEANS:
            advice = (
                f'write "{node.value}" in quotes if you mean the text'
                if expected == "text"
                else f"write {expected}"
            )
            self.problem(node, path, f"{node.value!r} reads as a boolean in YAML 1.1; {advice}")
            return None
        return str(node.value)


_E = TypeVar("_E", ActionKind, Confirmation, GitOpsMode, Safety)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _named_loader(name: str) -> type:
    """A SafeLoader subclass whose marks carry ``name`` (PyYAML takes it from the stream)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.name = name

    return _Loader


def _start_mark(name: str) -> Mark:
    from yaml.error import Mark

    return Mark(name, 0, 0, 0, "", 0)


def _pairs(node: Node) -> dict[str, tuple[Node, Node]]:
    from yaml.nodes import MappingNode

    if not isinstance(node, MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value if _is_scalar(k)}


def _item_name(node: Node) -> str | None:
    pair = _pairs(node).get("name")
    if pair is None or not _is_scalar(pair[1]) or _is_null(pair[1]):
        return None
    return str(pair[1].value)


def _is_scalar(node: Node) -> bool:
    from yaml.nodes import ScalarNode

    return isinstance(node, ScalarNode)


def _plain(node: Node) -> bool:
    """A scalar written as is: no quotes, no block style (YAML 1.1 guesses apply to it)."""
    return _is_scalar(node) and getattr(node, "style", None) is None


def _scalar_text(node: Node) -> str:
    return str(node.value) if _is_scalar(node) else ""


def _is_null(node: Node) -> bool:
    return _is_scalar(node) and _plain(node) and node.tag == _YAML + "null"


def _describe(node: Node) -> str:
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    if not _plain(node):
        return f"the text {node.value!r}"
    return f"{node.value!r}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown(text: str, known: Sequence[str], what: str) -> str:
    """``unknown field 'frezee'; did you mean 'freeze'?`` (or the list of choices)."""
    lowered = {k.lower(): k for k in known}
    guess = lowered.get(text.lower())
    if guess is None:
        close = difflib.get_close_matches(text, list(known), n=1, cutoff=0.6)
        guess = close[0] if close else None
    if guess is not None:
        return f"unknown {what} {text!r}; did you mean {guess!r}?"
    return f"unknown {what} {text!r}; expected one of: {', '.join(known)}"


def _notify_problem(target: str) -> str:
    kind, sep, rest = target.partition(":")
    if not sep or kind not in _NOTIFY_KINDS:
        if sep and kind:
            return _unknown(kind, _NOTIFY_KINDS, "notify kind") + f" ({_NOTIFY_HELP})"
        return f"{target!r} is not a notify target: {_NOTIFY_HELP}"
    if not rest or rest != rest.strip() or " " in rest:
        return f"{target!r} needs a destination after '{kind}:' without spaces ({_NOTIFY_HELP})"
    if kind == "webhook" and not re.match(r"^https?://[^/\s]+", rest):
        return f"{target!r}: a webhook needs an http:// or https:// URL"
    if kind == "email" and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", rest):
        return f"{target!r}: not an email address"
    if kind == "slack" and not rest.startswith(("#", "@")):
        return f"{target!r}: a Slack target is #channel or @user"
    return ""
