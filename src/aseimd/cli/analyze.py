"""``aseimd analyze``: diffusion, transference, coordination, profile.

The group lives here; the subcommands are defined in ``analyze_transport.py``
(diffusion, transference), ``analyze_structure.py`` (coordination) and
``analyze_profile.py`` (profile).
"""

import click

from aseimd.cli import analyze_profile, analyze_structure, analyze_transport


@click.group()
def analyze() -> None:
    """Transport and structure analysis of any trajectory mdtraj can read."""


for _module in (analyze_transport, analyze_structure, analyze_profile):
    for _command in _module.COMMANDS:
        analyze.add_command(_command)

COMMANDS: list[click.Command] = [analyze]
