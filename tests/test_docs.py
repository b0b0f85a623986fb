"""Docs as tests: every CLI command (and each of its options) is documented, with an example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from loomdb.cli import app

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def cli_doc_section(name: str) -> str:
    """The part of docs/cli.md under the heading ``## loomdb <name>``."""
    match = re.search(rf"^## loomdb {name}\b.*?(?=^## |\Z)", CLI_DOC, re.M | re.S)
    assert match, f"docs/cli.md has no '## loomdb {name}' section"
    return match.group(0)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_documented_in_cli_md_with_every_option(name: str) -> None:
    section = cli_doc_section(name)
    for param in COMMANDS[name].params:
        if param.param_type_name == "option" and "--help" not in param.opts:
            longest = max(param.opts, key=len)
            assert longest in section, f"docs/cli.md: {name} does not document {longest}"
    assert re.search(rf"^\$ loomdb {name}\b", section, re.M), f"no example for {name}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_listed_in_readme(name: str) -> None:
    assert re.search(rf"`loomdb {name}\b", README), f"README.md does not list loomdb {name}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_has_an_example(name: str) -> None:
    assert f"Example: loomdb {name}" in (COMMANDS[name].help or "")


def test_no_documented_command_is_missing_from_the_cli() -> None:
    documented = set(re.findall(r"^## loomdb (\S+)", CLI_DOC, re.M))
    assert documented == set(COMMANDS)
