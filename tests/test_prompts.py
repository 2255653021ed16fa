"""Prompt templates: storage by key, versions, and safe rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localchat import Conflict, ValidationError
from localchat.models import PromptTemplate
from localchat.repository import (
    create_prompt,
    delete_prompt,
    get_prompt,
    list_prompts,
    prompt_variables,
    render_prompt,
    update_prompt,
)

GREETING = {"text": "Hello {name}"}


def test_create_and_get_prompt_by_key(s):
    created = create_prompt(s, "p1", "Greeting", GREETING)
    fetched = get_prompt(s, "p1")
    assert fetched == created
    assert (fetched.key, fetched.name, fetched.content, fetched.version) == (
        "p1",
        "Greeting",
        GREETING,
        1,
    )


def test_get_prompt_returns_none_for_an_unknown_key(s):
    assert get_prompt(s, "nope") is None


def test_a_taken_key_is_a_conflict(s):
    create_prompt(s, "p1", "Greeting", GREETING)
    with pytest.raises(Conflict):
        create_prompt(s, "p1", "Other", {"text": "x"})
    assert get_prompt(s, "p1").name == "Greeting"


@pytest.mark.parametrize(
    ("key", "name", "content"),
    [
        ("", "n", GREETING),
        (1, "n", GREETING),
        ("k", "", GREETING),
        ("k", "x" * 256, GREETING),
        ("k", "n", None),
        ("k", "n", {"text": float("nan")}),
        ("k", "n", {"when": object()}),
        ("k", "n", {"text": "Hello {name"}),  # malformed template
        ("k", "n", {"text": "Hello {0}"}),  # positional field
        ("k", "n", {"text": "Hi {user.__class__}"}),  # attribute access
    ],
)
def test_create_prompt_refuses_bad_values(s, key, name, content):
    with pytest.raises(ValidationError):
        create_prompt(s, key, name, content)
    assert PromptTemplate.select().count() == 0


@pytest.mark.parametrize("content", ["Plain {x}", ["a {x}", "b"], {"n": 1, "t": [{"u": "{x}"}]}])
def test_content_may_be_any_json_value(s, content):
    create_prompt(s, "k", "n", content)
    assert get_prompt(s, "k").content == content


def test_update_prompt_bumps_version_on_each_change(s):
    create_prompt(s, "p1", "Greeting", GREETING)
    assert update_prompt(s, "p1", name="New Greeting").version == 2
    updated = update_prompt(s, "p1", content={"text": "Hi {name}!"})
    again = get_prompt(s, "p1")
    assert updated == again
    assert (again.name, again.content, again.version) == (
        "New Greeting",
        {"text": "Hi {name}!"},
        3,
    )


@pytest.mark.parametrize("fields", [{}, {"name": "Greeting"}, {"content": GREETING}])
def test_update_prompt_without_a_change_keeps_the_version(s, fields):
    create_prompt(s, "p1", "Greeting", GREETING)
    assert update_prompt(s, "p1", **fields).version == 1


def test_update_prompt_returns_none_for_an_unknown_key(s):
    assert update_prompt(s, "nope", name="x") is None


@pytest.mark.parametrize("fields", [{"name": ""}, {"content": {"t": "{a.b}"}}, {"name": 3}])
def test_update_prompt_refuses_bad_values_and_changes_nothing(s, fields):
    create_prompt(s, "p1", "Greeting", GREETING)
    with pytest.raises(ValidationError):
        update_prompt(s, "p1", **fields)
    again = get_prompt(s, "p1")
    assert (again.name, again.content, again.version) == ("Greeting", GREETING, 1)


def test_delete_prompt_reports_whether_there_was_one(s):
    create_prompt(s, "p1", "Greeting", GREETING)
    assert delete_prompt(s, "p1") is True
    assert delete_prompt(s, "p1") is False
    assert get_prompt(s, "p1") is None


def test_list_prompts_pages_in_key_order(s):
    for key in ["b", "c", "a", "d"]:
        create_prompt(s, key, key.upper(), {"text": key})
    assert [p.key for p in list_prompts(s)] == ["a", "b", "c", "d"]
    assert [p.key for p in list_prompts(s, limit=2, offset=1)] == ["b", "c"]
    assert list_prompts(s, limit=5, offset=4) == []


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-5, 0), (1, -1), (1, None), (1, "2")])
def test_list_prompts_refuses_bad_pagination(s, limit, offset):
    with pytest.raises(ValidationError):
        list_prompts(s, limit, offset)


# -- rendering ----------------------------------------------------------------


def test_render_prompt_fills_every_string_of_a_stored_template(s):
    prompt = create_prompt(
        s, "p1", "Chat", {"system": "You help {name}.", "turns": ["Hi {name}", 3], "n": None}
    )
    assert render_prompt(prompt, name="Ada", unused="ignored") == {
        "system": "You help Ada.",
        "turns": ["Hi Ada", 3],
        "n": None,
    }
    assert prompt.content["system"] == "You help {name}."  # the template is not changed


def test_render_prompt_accepts_bare_content():
    assert render_prompt("Hello {name}", name="Ada") == "Hello Ada"


def test_render_prompt_leaves_dict_keys_alone():
    assert render_prompt({"{name}": "{name}"}, name="Ada") == {"{name}": "Ada"}


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("{{literal}} {x}", {"x": 1}, "{literal} 1"),
        ("{score:.2f}", {"score": 0.5}, "0.50"),
        ("{name!r}", {"name": "Ada"}, "'Ada'"),
        ("{x}{x}", {"x": "ab"}, "abab"),
        ("no placeholders", {}, "no placeholders"),
    ],
)
def test_render_prompt_supports_format_specs_conversions_and_escapes(template, variables, expected):
    assert render_prompt(template, **variables) == expected


def test_a_missing_variable_is_an_error_naming_it():
    with pytest.raises(ValidationError, match="name"):
        render_prompt({"text": "Hello {name}"})
    with pytest.raises(ValidationError, match="first, last"):
        render_prompt("{last}, {first} {greeting}", greeting="hi")


@pytest.mark.parametrize(
    "template",
    [
        "{user.__class__.__mro__}",
        "{items[0]}",
        "{}",
        "{0}",
        "{x:{width}}",
        "{x!z}",
        "oops {",
        "} x",
    ],
)
def test_render_prompt_refuses_anything_but_plain_names(template):
    with pytest.raises(ValidationError):
        render_prompt(template, user=object(), items=[1], x=1, width=3)


def test_a_spec_that_does_not_fit_the_value_is_a_validation_error():
    with pytest.raises(ValidationError, match="score"):
        render_prompt("{score:.2f}", score="high")


def test_a_variable_may_be_called_prompt(s):
    stored = create_prompt(s, "rag", "RAG", {"text": "Context: {context}\nQuestion: {prompt}"})
    assert render_prompt(stored, context="c", prompt="q") == {"text": "Context: c\nQuestion: q"}
    assert render_prompt("{prompt}", prompt="q") == "q"


@pytest.mark.parametrize("spec", [">2000000000", ".20000f", "099999999999999999999", "x<10001"])
def test_a_width_or_precision_over_the_limit_is_refused_when_stored_and_rendered(s, spec):
    template = {"text": f"{{a:{spec}}}"}
    with pytest.raises(ValidationError, match="the limit is 10,000"):
        create_prompt(s, "wide", "Wide", template)
    with pytest.raises(ValidationError, match="the limit is 10,000"):
        render_prompt(template, a=1.5)


def test_a_width_at_the_limit_renders():
    assert render_prompt("{a:>10000}", a="x") == " " * 9999 + "x"


def test_prompt_variables_lists_every_placeholder(s):
    prompt = create_prompt(s, "p", "n", {"a": "{x} {y}", "b": ["{z}", "{{not}}"]})
    assert prompt_variables(prompt) == {"x", "y", "z"}


@given(value=st.text())
def test_any_variable_value_is_inserted_verbatim(value):
    assert render_prompt({"t": "<{v}>"}, v=value) == {"t": f"<{value}>"}


BRACEY = st.lists(st.sampled_from(["{", "}", "{a}", "{b}", "{{", "x"]) | st.text(max_size=3)).map(
    "".join
)


@given(value=BRACEY)
def test_braces_in_a_value_are_never_expanded_again(value):
    assert render_prompt("{a}{b}", a=value, b="B") == value + "B"
