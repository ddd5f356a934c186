"""How fast a text with variables is filled in, next to the limit: plain `str.replace`.

    .venv/bin/python bench/render_throughput.py [--recipients 100000]

Both fill the same 3-variable text for the same recipients from the same flat values.
`str.replace` is the floor of any substitution in Python (one C-level pass per variable,
no parsing, no defaults); crmsms's renderer compiles the text once and then joins literal
pieces and values, applying `|default:` fallbacks. A third figure adds building each
recipient's values from real Contact objects (`variables.values_for`), as sending does.
"""

import argparse
import os
import tempfile
import time

from report import emit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("CRMSMS_DATA_DIR", tempfile.mkdtemp(prefix="crmsms-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmsms.settings")
    import django

    django.setup()
    from crmsms.crm.models import Account, Contact
    from crmsms.sms import placeholders, variables

    n = args.recipients
    text = 'Hello {{ contact.first_name|default:"there" }}, your order from {{ contact.account.name }} is ready. ' \
           'Reply STOP to opt out. {{ user.first_name }}'
    plain = text.replace('{{ contact.first_name|default:"there" }}', "{{ contact.first_name }}")
    rows = [{"contact.first_name": f"Name{i}", "contact.account.name": f"Shop {i % 100}", "user.first_name": "Alice"}
            for i in range(n)]

    start = time.perf_counter()
    for values in rows:
        plain.replace("{{ contact.first_name }}", values["contact.first_name"]).replace(
            "{{ contact.account.name }}", values["contact.account.name"]).replace(
            "{{ user.first_name }}", values["user.first_name"])
    replace_rate = n / (time.perf_counter() - start)

    compiled = placeholders.compile(text, "contacts")
    start = time.perf_counter()
    rendered = [compiled.render(values) for values in rows]
    render_rate = n / (time.perf_counter() - start)
    assert rendered[7] == "Hello Name7, your order from Shop 7 is ready. Reply STOP to opt out. Alice"

    class Sender:
        first_name, last_name = "Alice", "Martin"

    accounts = [Account(pk=i + 1, name=f"Shop {i}") for i in range(100)]
    contacts = []
    for i in range(n):
        contact = Contact(pk=i + 1, first_name=f"Name{i}", last_name="X", account_id=i % 100 + 1)
        contact.account = accounts[i % 100]
        contacts.append(contact)
    start = time.perf_counter()
    for contact in contacts:
        compiled.render(variables.values_for(contact, Sender, compiled.names))
    full_rate = n / (time.perf_counter() - start)

    print(f"recipients: {n}, a text with 3 variables")
    print(f"str.replace (the limit):           {replace_rate:10,.0f} renders/s")
    print(f"crmsms renderer:                   {render_rate:10,.0f} renders/s   ratio {render_rate / replace_rate:.2f}")
    print(f"crmsms values from contacts + render: {full_rate:7,.0f} renders/s   ratio {full_rate / replace_rate:.2f}")
    emit("render", render_rate, "renders/s", replace_rate, note="3 variables; str.replace on the same data")


if __name__ == "__main__":
    main()
