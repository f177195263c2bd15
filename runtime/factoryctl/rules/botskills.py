"""Bot skills: learned mappings from a kind of free-text request to what the bot already does.

A skill is a regex plus either one of the bot's existing actions (its argument taken from
the named group `arg`) or a reply template rendered in Jinja's immutable sandbox over a
read-only status snapshot. It can never add a capability: validation refuses an unknown
action, a regex that can backtrack catastrophically, a template that calls, imports,
reaches for private attributes or names outside the snapshot, and anything oversized.
Everything here is pure: text in, values or a `BotSkillRefused` reason out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from factoryctl.core.defaults import (
    BOT_SKILL_DESCRIPTION_CHARS,
    BOT_SKILL_PATTERN_CHARS,
    BOT_SKILL_TEMPLATE_CHARS,
    BOT_TEXT_CHARS,
)
from factoryctl.core.errors import FactoryError


class Action(StrEnum):
    """The bot's commands: the only things a skill may point at."""

    STATUS = "status"
    TASKS = "tasks"
    TASK = "task"
    QUEUE = "queue"
    REVIEW = "review"
    APPROVE = "approve"
    REJECT = "reject"
    RESTORE = "restore"
    PAUSE = "pause"
    RESUME = "resume"
    LOG = "log"
    SPEND = "spend"
    STANDUP = "standup"
    DOCTOR = "doctor"
    HELP = "help"


SNAPSHOT_KEYS = ("now", "sessions", "tasks", "review_queue", "spend_today", "budget", "holds", "landings")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_FILTERS = frozenset({"default", "length", "round", "join", "upper", "lower", "int", "float", "first", "last",
                      "truncate", "abs", "sum", "count", "list", "sort", "title", "capitalize", "trim"})  # fmt: skip
_REFUSED_NODES = (nodes.Call, nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Macro,
                  nodes.CallBlock, nodes.FilterBlock, nodes.Mul, nodes.Pow, nodes.Assign, nodes.AssignBlock,
                  nodes.With, nodes.Scope, nodes.ScopedEvalContextModifier)  # fmt: skip


class BotSkillRefused(FactoryError):
    """A proposed or stored skill breaks a rule; the message says which."""


@dataclass(frozen=True)
class BotSkill:
    name: str
    pattern: str
    description: str = ""
    action: Action | None = None
    template: str | None = None

    def as_front_matter(self) -> str:
        """The skill's file: `key: <JSON value>` lines between --- fences, then the description."""
        fields: dict[str, Any] = {"name": self.name, "pattern": self.pattern}
        if self.action is not None:
            fields["action"] = self.action.value
        if self.template is not None:
            fields["template"] = self.template
        head = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
        return f"---\n{head}\n---\n{self.description.strip()}\n"


@dataclass(frozen=True)
class Match:
    skill: BotSkill
    arg: str  # the named group `arg`, or ""


def validate(raw: Mapping[str, Any], snapshot: Mapping[str, Any]) -> BotSkill:
    """A skill from the model's JSON (or a file), or BotSkillRefused saying why not."""
    if not isinstance(raw, Mapping):
        raise BotSkillRefused("a skill must be a JSON object")
    unknown = set(raw) - {"name", "pattern", "description", "action", "template"}
    if unknown:
        raise BotSkillRefused(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name, pattern, description = raw.get("name"), raw.get("pattern"), raw.get("description", "")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BotSkillRefused(f"name {name!r}: use 1-40 of a-z, 0-9 and '-'")
    if not isinstance(description, str) or len(description) > BOT_SKILL_DESCRIPTION_CHARS:
        raise BotSkillRefused(
            f"{name}: the description must be text of at most {BOT_SKILL_DESCRIPTION_CHARS} characters"
        )
    if not isinstance(pattern, str) or not pattern:
        raise BotSkillRefused(f"{name}: a pattern (regex) is required")
    check_pattern(pattern, name)
    action, template = raw.get("action"), raw.get("template")
    if (action is None) == (template is None):
        raise BotSkillRefused(f"{name}: give exactly one of action or template")
    if action is not None:
        if action not in Action.__members__.values():
            raise BotSkillRefused(f"{name}: unknown action {action!r}; allowed: {', '.join(Action)}")
        return BotSkill(name, pattern, description, action=Action(action))
    if not isinstance(template, str):
        raise BotSkillRefused(f"{name}: the template must be text")
    check_template(template, name, snapshot)
    return BotSkill(name, pattern, description, template=template)


def check_pattern(pattern: str, name: str = "skill") -> None:
    """Refuse an oversized, invalid or catastrophic regex (a quantifier over a quantifier or alternation)."""
    if len(pattern) > BOT_SKILL_PATTERN_CHARS:
        raise BotSkillRefused(
            f"{name}: the pattern is {len(pattern)} characters; the limit is {BOT_SKILL_PATTERN_CHARS}"
        )
    try:
        compiled = re.compile(pattern)
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise BotSkillRefused(f"{name}: not a valid regex: {exc}") from None
    if set(compiled.groupindex) - {"arg"}:
        raise BotSkillRefused(f"{name}: the only named group allowed is 'arg'")
    if _risky(parsed.data, inside_repeat=False):
        raise BotSkillRefused(f"{name}: catastrophic regex: a quantifier over a quantified group or an alternation")
    if "(?P=" in pattern or re.search(r"\\[1-9]", pattern):
        raise BotSkillRefused(f"{name}: backreferences are not allowed")


def _risky(items: Iterable[Any], *, inside_repeat: bool) -> bool:
    from re import _constants  # type: ignore[attr-defined]

    repeats = (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT)
    for op, arg in items:
        if op in repeats:
            _low, high, body = arg
            unbounded_ish = high is _constants.MAXREPEAT or high > 1
            if inside_repeat and unbounded_ish:
                return True
            if _risky(body, inside_repeat=inside_repeat or unbounded_ish):
                return True
        elif op is _constants.BRANCH:
            if inside_repeat:
                return True
            if any(_risky(branch, inside_repeat=False) for branch in arg[1]):
                return True
        elif op is _constants.SUBPATTERN:
            if _risky(arg[-1], inside_repeat=inside_repeat):
                return True
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT) and _risky(arg[1], inside_repeat=inside_repeat):
            return True
    return False


def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters = {k: v for k, v in env.filters.items() if k in _FILTERS}
    env.tests = {k: v for k, v in env.tests.items() if k in {"defined", "none", "number", "string", "odd", "even"}}
    env.globals = {}
    return env


def check_template(template: str, name: str, snapshot: Mapping[str, Any]) -> None:
    """Refuse a template that could reach outside the snapshot, then render it once to be sure."""
    if len(template) > BOT_SKILL_TEMPLATE_CHARS:
        raise BotSkillRefused(f"{name}: the template is {len(template)} characters; limit {BOT_SKILL_TEMPLATE_CHARS}")
    env = _env()
    try:
        tree = env.parse(template)
    except TemplateError as exc:
        raise BotSkillRefused(f"{name}: template does not parse: {exc}") from None
    bound = {t.name for f in tree.find_all(nodes.For) for t in _targets(f.target)}
    for node in tree.find_all(nodes.Node):
        if isinstance(node, _REFUSED_NODES):
            raise BotSkillRefused(f"{name}: template outside its sandbox: {type(node).__name__} is not allowed")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise BotSkillRefused(f"{name}: template outside its sandbox: attribute {node.attr!r}")
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and str(node.arg.value)[:1] == "_":
            raise BotSkillRefused(f"{name}: template outside its sandbox: item {node.arg.value!r}")
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in (*SNAPSHOT_KEYS, *bound, "loop"):
            raise BotSkillRefused(f"{name}: template outside its sandbox: {node.name!r} is not in the status snapshot")
        if isinstance(node, nodes.Filter | nodes.Test) and node.name not in (env.filters | env.tests):
            raise BotSkillRefused(f"{name}: template outside its sandbox: filter or test {node.name!r}")
    render_template(template, snapshot, name)


def _targets(target: nodes.Node) -> list[nodes.Name]:
    return [target] if isinstance(target, nodes.Name) else list(target.find_all(nodes.Name))


def render_template(template: str, snapshot: Mapping[str, Any], name: str = "skill") -> str:
    """The template rendered over the snapshot in the immutable sandbox; bounded output."""
    try:
        out = _env().from_string(template).render({k: snapshot.get(k) for k in SNAPSHOT_KEYS})
    except SecurityError as exc:
        raise BotSkillRefused(f"{name}: template outside its sandbox: {exc}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise BotSkillRefused(f"{name}: template fails on the status snapshot: {exc}") from None
    return out[: BOT_TEXT_CHARS * 4]


def parse_skill_file(text: str, snapshot: Mapping[str, Any]) -> BotSkill:
    """A skill file as written by `as_front_matter`, validated again (files can be edited by hand)."""
    if not text.startswith("---\n"):
        raise BotSkillRefused("a skill file starts with a --- line")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise BotSkillRefused("a skill file's front matter ends with a --- line")
    raw: dict[str, Any] = {"description": body.strip()}
    for line in head.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            raise BotSkillRefused(f"front matter line without 'key:': {line[:60]!r}")
        try:
            raw[key.strip()] = json.loads(value)
        except ValueError:
            raise BotSkillRefused(f"front matter {key.strip()!r}: not a JSON value") from None
    return validate(raw, snapshot)


def match(skills: Sequence[BotSkill], text: str) -> Match | None:
    """The first skill (by name) whose pattern matches the text (cut to BOT_TEXT_CHARS)."""
    text = text[:BOT_TEXT_CHARS]
    for skill in sorted(skills, key=lambda s: s.name):
        found = re.search(skill.pattern, text, flags=re.IGNORECASE)
        if found is not None:
            arg = found.groupdict().get("arg") or ""
            return Match(skill, " ".join(arg.split()))
    return None


def coverage(skills: Sequence[BotSkill], texts: Sequence[str]) -> dict[str, int]:
    """How many of `texts` some skill now handles."""
    handled = sum(1 for t in texts if match(skills, t) is not None)
    return {"handled": handled, "total": len(texts)}


def proposals(text: str) -> list[Any]:
    """The `skills` list from the model's answer (bare JSON or in a ``` fence), or BotSkillRefused."""
    fence = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
    candidate = fence.group(1) if fence else text[text.find("{") : text.rfind("}") + 1]
    try:
        obj = json.loads(candidate)
    except ValueError:
        raise BotSkillRefused("the model's answer is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("skills"), list):
        raise BotSkillRefused('the model\'s answer must be {"skills": [...]}')
    return list(obj["skills"])
