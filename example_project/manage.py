#!/usr/bin/env python
"""Django's command-line utility for the example project.

Run it from anywhere, e.g. from the repository root::

    python example_project/manage.py demo
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Is it installed and is your virtual "
            'environment active? From the repository root: pip install -e ".[example]"'
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
