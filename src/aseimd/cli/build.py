"""CLI commands: build (thin layer; logic lives in the library)."""

import click

COMMANDS: list[click.Command] = []
