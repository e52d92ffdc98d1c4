"""CLI: aseimd analyze subcommands (analyze_structure). Thin layer over aseimd.analysis."""

import click

COMMANDS: list[click.Command] = []
