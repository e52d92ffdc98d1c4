"""CLI: aseimd analyze subcommands (analyze_transport). Thin layer over aseimd.analysis."""

import click

COMMANDS: list[click.Command] = []
