"""Every koop_* command explains itself: a description, examples, and help on each argument."""

from __future__ import annotations

import argparse

import pytest
from django.core.management import ManagementUtility, get_commands, load_command_class

KOOP_COMMANDS = sorted(name for name, app in get_commands().items() if app == "koop_app")


def parser_of(name: str) -> tuple[argparse.ArgumentParser, str]:
    command = load_command_class("koop_app", name)
    return command.create_parser("manage.py", name), command.help


def all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments, those of its subcommands' parsers included."""
    found = []
    for action in parser._actions:
        found.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                found.extend(all_actions(subparser))
    return found


def test_the_app_commands_are_found():
    assert {"koop_admin_user", "koop_cache", "koop_dataset", "koop_demo", "koop_export",
            "koop_import", "koop_providers", "koop_refresh"} <= set(KOOP_COMMANDS)


def test_manage_py_help_lists_them():
    text = ManagementUtility(["manage.py", "help"]).main_help_text()
    assert "[koop_app]" in text
    for name in KOOP_COMMANDS:
        assert f"    {name}\n" in text


@pytest.mark.parametrize("name", KOOP_COMMANDS)
def test_every_command_and_argument_has_help(name):
    parser, description = parser_of(name)
    assert description.strip(), f"{name} has no help"
    missing = [action.dest for action in all_actions(parser)
               if not (action.help or "").strip() or action.help == argparse.SUPPRESS]
    assert not missing, f"{name}: no help for {missing}"


@pytest.mark.parametrize("name", KOOP_COMMANDS)
def test_help_keeps_the_description_lines_and_shows_examples(name, capsys):
    ManagementUtility(["manage.py", "help", name]).execute()
    text = capsys.readouterr().out
    _, description = parser_of(name)
    for line in description.splitlines():  # as written, not rewrapped into one paragraph
        assert f"{line}\n" in text
    examples = text.split("\nexamples:\n", 1)[1]
    assert f"  manage.py {name}" in examples


def test_koop_dataset_explains_its_flags(capsys):
    ManagementUtility(["manage.py", "help", "koop_dataset"]).execute()
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal
    for phrase in ("--host HOST the :host segment", "--option KEY=VALUE one provider option",
                   "--ttl SECONDS how long a cached copy stays fresh",
                   "--refresh fetch the data now",
                   "manage.py koop_dataset geojson parks --option source=parks.geojson"):
        assert phrase in text
