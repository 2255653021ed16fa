"""The registry of LLM services and their models, and validated invocation parameters.

    from localchat import InvocationParams, local_session
    from localchat.repository import create_model, create_service

    with local_session() as s:
        svc = create_service(s, "openai-prod", "openai",
                             base_url="https://api.openai.com/v1", auth_ref="env:OPENAI_API_KEY")
        create_model(s, svc.id, "gpt-4o", modality="chat", supports_tools=True)
        params = InvocationParams(service_id=svc.id, model_name="gpt-4o",
                                  messages=[{"role": "user", "content": "Hello"}],
                                  temperature=0.5).validate(s)

``auth_ref`` is a *reference* to a secret kept elsewhere (an environment
variable, a keyring entry, a vault path: ``"env:OPENAI_API_KEY"``), never the
secret itself; values that look like an API key are refused, and so are
credentials inside ``base_url``.

``InvocationParams`` checks what it can on its own when built (roles,
temperature 0..2, top_p 0..1, positive max_tokens, non-empty messages with
string content); ``.validate(s)`` / ``build_invocation(s, ...)`` also check the
registry: the service exists and the model is registered under it (``NotFound``),
tools only for a model that supports them and max_tokens within its context
window (``ValidationError``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ..checks import (
    INT32_MAX,
    check_bool,
    check_fields,
    check_json,
    check_positive_int,
    check_storable,
    check_text,
    get_row,
)
from ..database import Session
from ..errors import NotFound, ValidationError
from ..models import ROLES, LLMModel, LLMService
from ..operations import operation, read_operation
from ._base import paginate, update_row

__all__ = [
    "create_service",
    "get_service",
    "list_services",
    "update_service",
    "delete_service",
    "create_model",
    "get_model",
    "get_model_by_name",
    "list_models",
    "update_model",
    "delete_model",
    "InvocationParams",
    "build_invocation",
]

_SECRET_PREFIXES = ("sk-", "sk_", "pk_", "rk_", "ghp_", "gho_", "github_pat_", "xox", "akia",
                    "aiza", "hf_", "bearer ", "basic ")  # fmt: skip
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+/=]{20,}")
_MODALITY = re.compile(r"[a-z][a-z0-9_-]{0,31}")


# -- validation ---------------------------------------------------------------


def _base_url(value: Any) -> str:
    text = check_text("base_url", value, max_length=255)
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not 0-65535
    except ValueError as exc:  # the value is not echoed: it may carry credentials
        raise ValidationError(
            f"base_url is not a valid URL ({exc}); give an http(s) URL like 'https://host/v1'."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"base_url {value!r} is not an http(s) URL like 'https://host/v1'.")
    if parts.username or parts.password:
        raise ValidationError(
            f"base_url {parts.scheme}://{parts.hostname}... carries credentials; keep them "
            "in a secret store and name it in auth_ref."
        )
    return text


def _looks_secret(text: str) -> bool:
    if text.lower().startswith(_SECRET_PREFIXES):
        return True
    for run in _RANDOM_RUN.findall(text):
        classes = sum(
            any(test(ch) for ch in run) for test in (str.islower, str.isupper, str.isdigit)
        )
        if classes == 3:  # mixed case and digits: random, not a name
            return True
    return False


def _auth_ref(value: Any) -> str:
    text = check_text("auth_ref", value, max_length=255)
    if _looks_secret(text):
        raise ValidationError(
            "auth_ref looks like a secret (an API key or token); store the secret elsewhere "
            "and pass a reference to it, e.g. 'env:OPENAI_API_KEY' or 'keyring:openai'."
        )
    return text


_SERVICE_FIELDS = {
    "name": lambda v: check_text("name", v, max_length=255),
    "provider": lambda v: check_text("provider", v, max_length=255),
    "base_url": _base_url,
    "auth_ref": _auth_ref,
}


def _modality(value: Any) -> str:
    text = check_text("modality", value)
    if not _MODALITY.fullmatch(text):
        raise ValidationError(
            f"modality {value!r} must be a short lower-case word such as chat, completion, "
            "embedding, image or audio."
        )
    return text


_MODEL_FIELDS = {
    "name": lambda v: check_text("name", v, max_length=255),
    "modality": _modality,
    "supports_tools": lambda v: check_bool("supports_tools", v),
    "context_window": lambda v: check_positive_int("context_window", v, INT32_MAX),
}


def _service(key: Any) -> LLMService | None:
    """The service a key names: its name (str), else its id or uuid (see ``get_row``)."""
    if isinstance(key, str) and check_storable("service_id", key):
        by_name = LLMService.get_or_none(LLMService.name == key)
        if by_name is not None:
            return by_name
    return get_row(LLMService, key)


# -- services -----------------------------------------------------------------


@operation
def create_service(
    s: Session,
    name: str,
    provider: str,
    base_url: str | None = None,
    auth_ref: str | None = None,
) -> LLMService:
    """Register an endpoint; a taken ``name`` raises ``Conflict``."""
    fields = check_fields(
        "LLM service",
        _SERVICE_FIELDS,
        dict(name=name, provider=provider, base_url=base_url, auth_ref=auth_ref),
        required=("name", "provider"),
    )
    return LLMService.create(**fields)


@operation
def get_service(s: Session, service_id: int | str) -> LLMService | None:
    """The service with this id, uuid or name, or None."""
    return _service(service_id)


@operation
def list_services(s: Session, limit: int | None = 100, offset: int = 0) -> list[LLMService]:
    """Services in name order."""
    return paginate(LLMService.select().order_by(LLMService.name), limit, offset)


@operation
def update_service(s: Session, service_id: int | str, **fields: Any) -> LLMService | None:
    """Change name, provider, base_url or auth_ref; None if the service is missing."""
    return update_row(_service(service_id), check_fields("LLM service", _SERVICE_FIELDS, fields))


@operation
def delete_service(s: Session, service_id: int | str) -> bool:
    """Delete a service and every model registered under it."""
    service = _service(service_id)
    return bool(service.delete_instance()) if service is not None else False


# -- models -------------------------------------------------------------------


@operation
def create_model(
    s: Session,
    service_id: int | str,
    name: str,
    modality: str = "chat",
    supports_tools: bool = False,
    context_window: int | None = None,
) -> LLMModel:
    """Register a model under a service (``NotFound`` if the service is missing)."""
    fields = check_fields(
        "LLM model",
        _MODEL_FIELDS,
        dict(
            name=name,
            modality=modality,
            supports_tools=supports_tools,
            context_window=context_window,
        ),
        required=("name", "modality", "supports_tools"),
    )
    service = _service(service_id)
    if service is None:
        raise NotFound(f"LLM service {service_id!r} does not exist.")
    return LLMModel.create(service=service, **fields)


@operation
def get_model(s: Session, model_id: int | str) -> LLMModel | None:
    """The model with this id or uuid, or None."""
    return get_row(LLMModel, model_id)


@operation
def get_model_by_name(s: Session, service_id: int | str, name: str) -> LLMModel | None:
    """The model called ``name`` under a service (id, uuid or name), or None."""
    service = _service(service_id)
    if service is None:
        return None
    where = (LLMModel.service == service) & (LLMModel.name == check_text("name", name))
    return LLMModel.get_or_none(where)


@operation
def list_models(
    s: Session, service_id: int | str | None = None, limit: int | None = 100, offset: int = 0
) -> list[LLMModel]:
    """Models of one service (or of all), by service then name; [] for an unknown service."""
    query = LLMModel.select().order_by(LLMModel.service, LLMModel.name)
    if service_id is not None:
        service = _service(service_id)
        query = query.where(LLMModel.service == (service.id if service else None))
    return paginate(query, limit, offset)


@operation
def update_model(s: Session, model_id: int | str, **fields: Any) -> LLMModel | None:
    """Change name, modality, supports_tools or context_window; None if missing."""
    return update_row(get_row(LLMModel, model_id), check_fields("LLM model", _MODEL_FIELDS, fields))


@operation
def delete_model(s: Session, model_id: int | str) -> bool:
    """Remove a model from the registry; True if it was there."""
    model = get_row(LLMModel, model_id)
    return bool(model.delete_instance()) if model is not None else False


# -- invocation parameters ----------------------------------------------------


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValidationError(f"{name} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
    return float(value)


def _messages(value: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValidationError(
            "messages must be a non-empty list like [{'role': 'user', 'content': 'Hello'}]."
        )
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise ValidationError(f"messages[{i}] must be a dict, got {message!r}.")
        role = message.get("role")
        if role not in ROLES:
            raise ValidationError(f"messages[{i}] role {role!r} is not one of {', '.join(ROLES)}.")
        if not isinstance(message.get("content"), str):
            raise ValidationError(f"messages[{i}] content must be a string.")
        out.append(dict(message))
    return tuple(out)


def _stop(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items:
        raise ValidationError(f"stop must be a string or a non-empty list of them, got {value!r}.")
    return tuple(check_text("stop", item) for item in items)


def _tools(value: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(f"tools must be a list of tool definitions, got {value!r}.")
    if not all(isinstance(tool, Mapping) for tool in value):
        raise ValidationError("every tool must be a dict (a JSON tool definition).")
    return tuple(dict(tool) for tool in value)


@dataclasses.dataclass(frozen=True)
class InvocationParams:
    """One validated model call: which model, which messages, which sampling options.

    Built without a session it checks its own values; ``validate(s)`` checks it
    against the registry too. ``service_id`` is the service's id, uuid or name.
    """

    service_id: int | str
    model_name: str
    messages: Sequence[Mapping[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: str | Sequence[str] | None = None
    tools: Sequence[Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        service_id = self.service_id
        if isinstance(service_id, LLMService):
            set_(self, "service_id", service_id.id)
        elif isinstance(service_id, int) and not isinstance(service_id, bool):
            check_positive_int("service_id", service_id)
        else:
            check_text("service_id", service_id)
        check_text("model_name", self.model_name, max_length=255)
        set_(self, "messages", _messages(self.messages))
        if self.temperature is not None:
            set_(self, "temperature", _number("temperature", self.temperature, 0, 2))
        if self.top_p is not None:
            set_(self, "top_p", _number("top_p", self.top_p, 0, 1))
        if self.max_tokens is not None:
            check_positive_int("max_tokens", self.max_tokens)
        if self.stop is not None:
            set_(self, "stop", _stop(self.stop))
        if self.tools is not None:
            set_(self, "tools", _tools(self.tools))
        check_json("invocation parameters", self.to_dict())

    @property
    def options(self) -> dict[str, Any]:
        """The sampling options that were set (what a ``Response`` keeps as ``options``)."""
        return {
            n: list(v) if isinstance(v, tuple) else v
            for n in sorted(_OPTION_NAMES)
            if (v := getattr(self, n)) is not None
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: service_id, model_name, messages and the options set."""
        return {
            "service_id": self.service_id,
            "model_name": self.model_name,
            "messages": [dict(m) for m in self.messages],
            **self.options,
        }

    def validate(self, session: Session) -> InvocationParams:
        """``self`` once the registry confirms the service and model; raises otherwise."""
        _check_registered(session, self)
        return self


_OPTION_NAMES = {"temperature", "max_tokens", "top_p", "stop", "tools"}


@operation
def _check_registered(s: Session, params: InvocationParams) -> LLMModel:
    service = _service(params.service_id)
    if service is None:
        raise NotFound(f"LLM service {params.service_id!r} is not registered.")
    model = LLMModel.get_or_none(
        (LLMModel.service == service) & (LLMModel.name == params.model_name)
    )
    if model is None:
        known = [
            m.name
            for m in LLMModel.select()
            .where(LLMModel.service == service)
            .order_by(LLMModel.name)
            .limit(20)
        ]
        raise NotFound(
            f"model {params.model_name!r} is not registered under service {service.name!r}; "
            f"registered: {', '.join(known) or 'none'}."
        )
    if params.tools and not model.supports_tools:
        raise ValidationError(f"model {model.name!r} does not support tools.")
    if params.max_tokens and model.context_window and params.max_tokens > model.context_window:
        raise ValidationError(
            f"max_tokens {params.max_tokens} exceeds the context window of {model.name!r} "
            f"({model.context_window})."
        )
    return model


@read_operation
def build_invocation(
    s: Session,
    service_id: int | str,
    model_name: str,
    messages: Sequence[Mapping[str, Any]],
    **options: Any,
) -> InvocationParams:
    """``InvocationParams(...)`` checked against the registry, in one call."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise ValidationError(
            f"unknown invocation option {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(_OPTION_NAMES))}."
        )
    return InvocationParams(service_id, model_name, messages, **options).validate(s)
