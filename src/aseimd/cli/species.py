"""CLI commands: species (thin layer; logic lives in the library)."""

from __future__ import annotations

import click

from aseimd.species import SALTS, all_species

COMMANDS: list[click.Command] = []


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def fmt(cells) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([fmt(header), fmt("-" * w for w in widths), *(fmt(r) for r in rows)])


@click.command("species")
def species_command() -> None:
    """List every species (ions, solvents, later polymers) and the salts.

    Columns: name used in recipes, PDB residue name, kind, formal charge (e;
    ions are simulated with charge_scale x this), force-field file under
    forcefields/, whether the parameter set is published (literature) or built
    by aseimd (derived; the rule is printed below the table), parameter source.
    """
    rows = [[sp.name, sp.residue, sp.kind, f"{sp.formal_charge:+d}", sp.forcefield_file, sp.parameter_status,
             sp.source] for sp in all_species()]
    click.echo(_table(rows, ["name", "residue", "kind", "charge", "file", "parameters", "source"]))
    derived = [sp for sp in all_species() if sp.parameter_status == "derived"]
    if derived:
        click.echo("\nDerived parameter sets (no published set found; built by aseimd):")
        for sp in derived:
            click.echo(f"  {sp.name}: {sp.parameter_label}")
    click.echo("")
    salts = [[salt, cat, an] for salt, (cat, an) in SALTS.items()]
    click.echo(_table(salts, ["salt", "cation", "anion"]))


COMMANDS.append(species_command)
