"""Help text of the ``koop_*`` commands: descriptions and examples that keep their lines.

Django's help formatter rewraps a command's ``help`` into one paragraph, which flattens
examples. ``explain`` switches a parser to a formatter that keeps the description's and the
epilog's line breaks (arguments' help is still wrapped to the terminal) and adds examples::

    def add_arguments(self, parser):
        explain(parser, '''
            manage.py koop_refresh geojson/places
            manage.py koop_refresh --all --no-progress
        ''')
"""

from __future__ import annotations

import argparse
import textwrap

from django.core.management.base import DjangoHelpFormatter


class KoopHelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of arguments (the command's own first), description and epilog as written."""


def explain(parser: argparse.ArgumentParser, examples: str) -> None:
    """Keep the parser's description as written and end its help with ``examples``."""
    parser.formatter_class = KoopHelpFormatter
    parser.epilog = "examples:\n" + textwrap.indent(textwrap.dedent(examples).strip("\n"), "  ")
