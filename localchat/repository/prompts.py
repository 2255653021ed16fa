"""Versioned prompt templates, looked up by key, rendered with named variables.

    from localchat import local_session
    from localchat.repository import create_prompt, get_prompt, render_prompt, update_prompt

    with local_session() as s:
        create_prompt(s, "p1", "Greeting", {"text": "Hello {name}"})
        update_prompt(s, "p1", content={"text": "Hello {name}!"})   # version 1 -> 2
        render_prompt(get_prompt(s, "p1"), name="Ada")             # {'text': 'Hello Ada!'}

``content`` is any JSON value (usually a dict of strings). Rendering fills
``{name}`` placeholders in every string inside it, ``str.format``-style but with
plain names only: ``{user.__class__}`` or ``{items[0]}`` are refused, so a
template can never reach into the objects it is given. ``{{`` and ``}}`` are
literal braces; a format spec (``{score:.2f}``) and a conversion (``{name!r}``)
are allowed, with widths and precisions up to :data:`MAX_FORMAT_WIDTH` (a
larger one would build a huge string). A missing variable raises
``ValidationError`` naming it. Any variable name works, ``prompt`` included.
"""

from __future__ import annotations

import re
import string
from typing import Any

from ..checks import check_json, check_text
from ..database import Session
from ..errors import ValidationError
from ..models import PromptTemplate
from ..operations import operation
from ._base import paginate

__all__ = [
    "create_prompt",
    "get_prompt",
    "update_prompt",
    "delete_prompt",
    "list_prompts",
    "prompt_variables",
    "render_prompt",
]

_FORMATTER = string.Formatter()

#: The largest width or precision a placeholder's format spec may ask for.
MAX_FORMAT_WIDTH = 10_000
_NUMBER = re.compile(r"\d+")


def _key(value: Any) -> str:
    return check_text("key", value, max_length=255)


def _name(value: Any) -> str:
    return check_text("name", value, max_length=255)


def _content(value: Any) -> Any:
    check_json("content", value, required=True)
    _walk(value, _fields)  # a malformed template is refused when stored, not when used
    return value


@operation
def create_prompt(s: Session, key: str, name: str, content: Any) -> PromptTemplate:
    """A new template at version 1; a taken ``key`` raises ``Conflict``."""
    return PromptTemplate.create(key=_key(key), name=_name(name), content=_content(content))


@operation
def get_prompt(s: Session, key: str) -> PromptTemplate | None:
    """The template stored under ``key``, or None."""
    return PromptTemplate.get_or_none(PromptTemplate.key == _key(key))


@operation
def update_prompt(
    s: Session, key: str, name: str | None = None, content: Any = None
) -> PromptTemplate | None:
    """Change name and/or content; the version goes up by one if anything changed.

    None if there is no template under ``key``.
    """
    new_name = _name(name) if name is not None else None
    new_content = _content(content) if content is not None else None
    row = PromptTemplate.get_or_none(PromptTemplate.key == _key(key))
    if row is None:
        return None
    changed = False
    if new_name is not None and new_name != row.name:
        row.name, changed = new_name, True
    if new_content is not None and new_content != row.content:
        row.content, changed = new_content, True
    if changed:
        row.version += 1
        row.save()
    return row


@operation
def delete_prompt(s: Session, key: str) -> bool:
    """Delete the template stored under ``key``; True if there was one."""
    return bool(PromptTemplate.delete().where(PromptTemplate.key == _key(key)).execute())


@operation
def list_prompts(s: Session, limit: int | None = 100, offset: int = 0) -> list[PromptTemplate]:
    """Templates in key order."""
    return paginate(PromptTemplate.select().order_by(PromptTemplate.key), limit, offset)


# -- rendering ----------------------------------------------------------------


def _parse(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValidationError(
            f"template {template!r} is malformed ({exc}); write literal braces as {{{{ and }}}}."
        ) from exc
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if conversion not in (None, "r", "s", "a"):
            raise ValidationError(
                f"placeholder {{{field}!{conversion}}} in {template!r} has an unknown "
                "conversion; use !r, !s or !a."
            )
        if not field.isidentifier():
            raise ValidationError(
                f"placeholder {{{field}}} in {template!r} is not a plain name; "
                "only {name} placeholders are allowed (no positions, attributes or indexes)."
            )
        if spec and ("{" in spec or "}" in spec):
            raise ValidationError(
                f"placeholder {{{field}:{spec}}} in {template!r} nests another placeholder."
            )
        if spec and any(int(n) > MAX_FORMAT_WIDTH for n in _NUMBER.findall(spec)):
            raise ValidationError(
                f"placeholder {{{field}:{spec}}} in {template!r} asks for a width or precision "
                f"over {MAX_FORMAT_WIDTH:,}; the limit is {MAX_FORMAT_WIDTH:,}."
            )
    return parts


def _fields(template: str) -> str:
    _parse(template)
    return template


def _walk(value: Any, fn: Any) -> Any:
    """``value`` with ``fn`` applied to every string inside it (dict keys untouched)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, fn) for v in value]
    return value


def _template(prompt: Any) -> Any:
    return prompt.content if isinstance(prompt, PromptTemplate) else prompt


def prompt_variables(prompt: PromptTemplate | Any) -> set[str]:
    """The placeholder names a template (or its content) needs."""
    names: set[str] = set()

    def collect(text: str) -> str:
        names.update(field for _, field, _, _ in _parse(text) if field is not None)
        return text

    _walk(_template(prompt), collect)
    return names


def render_prompt(prompt: PromptTemplate | Any, /, **variables: Any) -> Any:
    """The template's content with every ``{name}`` filled from ``variables``.

    Extra variables are ignored; missing ones raise ``ValidationError``.
    """
    content = _template(prompt)
    missing = sorted(prompt_variables(content) - set(variables))
    if missing:
        raise ValidationError(
            f"missing prompt variable{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; pass {', '.join(f'{m}=...' for m in missing)}."
        )

    def fill(text: str) -> str:
        out = []
        for literal, field, spec, conversion in _parse(text):
            out.append(literal)
            if field is None:
                continue
            value = _FORMATTER.convert_field(variables[field], conversion)
            try:
                out.append(format(value, spec or ""))
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"cannot format variable {field}={value!r} with {{{field}:{spec}}}: {exc}."
                ) from exc
        return "".join(out)

    return _walk(content, fill)
