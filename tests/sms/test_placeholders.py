"""The placeholder language: properties over any input, the injection corpus, defaults."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsms.sms import placeholders, variables
from crmsms.sms.placeholders import PlaceholderError

CONTACT_VALUES = {name: f"<{name}>" for name in variables.NAMES["contacts"]}

# Text built from the pieces that matter to the parser, plus anything at all.
pieces = st.sampled_from(["{{", "}}", "{%", "%}", "{", "}", "|", "default", ":", '"', " ", ".", "contact",
                          "first_name", "contact.first_name", "today", "__class__", "\n", "€", "é", "🎉"])
texts = st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=30).map("".join)


@given(texts, st.sampled_from(["contacts", "accounts"]))
@settings(max_examples=600, deadline=None)
def test_any_text_renders_or_names_positions(text, module):
    try:
        compiled = placeholders.compile(text, module)
    except PlaceholderError as error:
        assert error.problems
        for problem in error.problems:
            assert 1 <= problem.position <= len(text)
            assert text[problem.position - 1] == "{"
            assert problem.message.startswith(f"Position {problem.position}")
        return
    rendered = compiled.render({name: "" for name in variables.NAMES[module]})
    # Empty values leave the text's own characters and the defaults: no placeholder survives.
    assert rendered == "".join(literal + default for literal, _, default in compiled.parts)
    assert rendered.count("{{") == sum(default.count("{{") + literal.count("{{") for literal, _, default in compiled.parts)


@given(st.text(alphabet=string.ascii_letters + string.digits + " ,.!?'-\n", max_size=200))
def test_text_without_braces_is_left_alone(text):
    assert placeholders.compile(text, "contacts").render(CONTACT_VALUES) == text


@given(st.text(max_size=50))
def test_values_are_inserted_literally_never_parsed_again(value):
    compiled = placeholders.compile("Hi {{ contact.first_name }}!", "contacts")
    assert compiled.render({"contact.first_name": value}) == (f"Hi {value}!" if value else "Hi !")


def test_defaults_and_missing_values():
    compiled = placeholders.compile('Hello {{ contact.first_name|default:"there" }} {{contact.last_name}}.', "contacts")
    assert compiled.render({"contact.first_name": "", "contact.last_name": ""}) == "Hello there ."
    assert compiled.render({}) == "Hello there ."  # never the literal placeholder
    assert compiled.render({"contact.first_name": "Camille", "contact.last_name": "Bernard"}) == "Hello Camille Bernard."
    spaced = placeholders.compile('{{ contact.first_name | default : "x" }}', "contacts")
    assert spaced.render({}) == "x"


# Each entry is refused when saved, or rendered as the literal text it is: never a value
# the registry does not offer.
INJECTIONS = [
    ("{{ contact.account.owner.password }}", "unknown_variable"),
    ("{{ contact.__class__ }}", "malformed_placeholder"),
    ("{{ __import__('os').system('id') }}", "malformed_placeholder"),
    ("{{ contact.first_name.__class__.__mro__ }}", "malformed_placeholder"),
    ("{% load static %}", "tag_not_supported"),
    ("{% debug %}", "tag_not_supported"),
    ("{% include '/etc/passwd' %}", "tag_not_supported"),
    ("{{ settings.SECRET_KEY }}", "malformed_placeholder"),
    ("{{ settings.secret_key }}", "unknown_variable"),
    ("{{ request.user.password }}", "unknown_variable"),
    ("{{ config.items() }}", "malformed_placeholder"),
    ("{{ contact.first_name|safe }}", "unknown_filter"),
    ("{{ contact.first_name | upper }}", "unknown_filter"),
    ("{{ contact.first_name|default:contact.email }}", "malformed_placeholder"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "malformed_placeholder"),
    ("{{ contact.first_name", "unclosed_placeholder"),
    ("{{ account.name }}", "unknown_variable"),  # an account variable in a contacts text
]
LITERAL = ["{0.__class__}", "{contact.first_name}", "%(contact)s", "${contact.email}", "{# comment #}",
           "<script>alert(1)</script>", "}} {{ today }} {", "{ {contact.first_name} }"]


@pytest.mark.parametrize("text, code", INJECTIONS)
def test_injections_are_refused(text, code):
    with pytest.raises(PlaceholderError) as refused:
        placeholders.compile(text, "contacts")
    assert [p.code for p in refused.value.problems] == [code]


@pytest.mark.parametrize("text", LITERAL)
def test_other_syntaxes_are_rendered_literally(text):
    rendered = placeholders.compile(text, "contacts").render(CONTACT_VALUES)
    if "{{ today }}" in text:
        assert rendered == text.replace("{{ today }}", CONTACT_VALUES["today"])
    else:
        assert rendered == text


def test_every_problem_is_listed_with_its_position():
    text = "Hi {{ contact.nickname }}, {% if x %} and {{ broken"
    with pytest.raises(PlaceholderError) as refused:
        placeholders.compile(text, "contacts")
    assert [(p.position, p.code) for p in refused.value.problems] == [
        (4, "unknown_variable"), (28, "tag_not_supported"), (43, "unclosed_placeholder")]
    assert (text[3:5], text[27:29], text[42:44]) == ("{{", "{%", "{{")


def test_the_registry_has_what_the_issue_lists():
    assert {"contact.first_name", "contact.last_name", "contact.title", "contact.phone_mobile", "contact.email",
            "contact.account.name", "user.first_name", "user.last_name", "today"} <= variables.NAMES["contacts"]
    assert {"account.name", "account.phone_office", "account.billing_city", "user.first_name", "user.last_name",
            "today"} <= variables.NAMES["accounts"]
    assert all(v.label for vs in variables.REGISTRY.values() for v in vs)
