"""`crmsms COMMAND`: Django's management commands, with dashes allowed (`crmsms api-token`).

    crmsms run            web UI + worker together (what `make run` starts)
    crmsms serve          the web UI only
    crmsms worker         the scheduled tasks: huey consumer + dispatcher
    crmsms simulator      a provider simulator speaking HTTP on loopback
    crmsms api-token USER print a new API token
    crmsms migrate, createsuperuser, ...  as in Django
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmsms.settings")
    from django.core.management import execute_from_command_line

    argv = list(sys.argv)
    argv[0] = "crmsms"
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
