"""The SMS editor in Chromium: « Copy the selected field » puts the placeholder at the
cursor, the counter follows, look-alike characters are named and replaced, and the preview
shows the text as it will leave."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_copy_the_selected_field_counter_and_lookalikes(logged_in, live_server, contact):
    page = logged_in
    page.goto(f"{live_server.url}/contacts/{contact.pk}/sms/new/")
    body = page.locator("#id_body")
    body.fill("Hello , see you soon")
    body.evaluate("el => el.setSelectionRange(6, 6)")  # the cursor after "Hello "
    page.select_option("select[data-fields-for=contacts]", "{{ contact.first_name }}")
    page.click("text=Copy the selected field")
    assert body.input_value() == "Hello {{ contact.first_name }}, see you soon"
    counter = page.locator("[data-counter]")
    # At once: the typed text around the variable; then, from the server, the text as it
    # will leave for this contact, which is what the counter shows from then on.
    page.wait_for_selector("[data-preview]:not([hidden])")
    assert page.inner_text("[data-preview-text]") == "Hello Camille, see you soon"
    page.wait_for_function("document.querySelector('[data-counter]').textContent.endsWith('as it will leave')")
    assert counter.inner_text() == "27 / 1600 characters · GSM-7 · 1 part as it will leave"

    # A curly apostrophe from a word processor makes the whole text UCS-2.
    body.press("End")
    body.type(" \u2019til then\u2026")
    page.wait_for_function("document.querySelector('[data-counter]').textContent.includes('UCS-2')")
    warning = page.locator("[data-ucs2]")
    assert warning.is_visible() and "\u2019" in warning.inner_text() and "\u2026" in warning.inner_text()
    page.click("text=Replace the look-alikes with plain characters")
    assert body.input_value().endswith(" 'til then...")
    page.wait_for_function("document.querySelector('[data-counter]').textContent.includes('GSM-7')")
    assert not warning.is_visible()


def test_counter_matches_the_server_on_part_boundaries(logged_in, live_server, contact):
    """The figures typed text gets at once are the server's, boundaries included."""
    from crmsms.sms import segments

    page = logged_in
    page.goto(f"{live_server.url}/contacts/{contact.pk}/sms/new/")
    for text in ["a" * 160, "a" * 161, "a" * 152 + "€" + "a" * 152, "ê" * 66 + "🎉" + "ê" * 66, "x\u00a0y"]:
        shown = page.evaluate(
            "t => { const f = document.querySelector('#id_body'); f.value = t; f.dispatchEvent(new Event('input'));"
            " return document.querySelector('[data-counter]').textContent; }", text)
        m = segments.measure(segments.normalise(text))
        assert shown.startswith(f"{m.characters} / 1600 characters · {m.encoding} · {m.segments} part"), (text, shown)


def test_the_template_form_field_list_follows_the_module(logged_in, live_server):
    page = logged_in
    page.goto(f"{live_server.url}/templates/new/")
    assert page.is_visible("select[data-fields-for=contacts]")
    page.check("input[name=module][value=accounts]")
    assert page.is_visible("select[data-fields-for=accounts]") and not page.is_visible("select[data-fields-for=contacts]")
    page.click("text=Copy the selected field")
    assert page.locator("#id_body").input_value() == "{{ account.name }}"
    page.fill("#id_name", "Welcome")
    page.click("form[data-template-form] button[type=submit]")
    page.wait_for_selector("h1:has-text('Welcome')")
