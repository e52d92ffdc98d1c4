"""CLI: aseimd analyze profile. Thin layer over aseimd.analysis."""

import click

COMMANDS: list[click.Command] = []
