"""CLI commands: ``aseimd build <what>`` (thin layer; logic lives in :mod:`aseimd.build`).

Each builder is one subcommand of the ``build`` group; a new builder (``polymer``,
``interface``) is a function decorated with ``@build.command(...)`` here, or a
command defined elsewhere and attached with ``build.add_command(...)``.
"""

from __future__ import annotations

import click

#: Solvent molecules used when neither --n-solvent nor --box-edge-nm is given.
DEFAULT_N_SOLVENT = 500


@click.group("build")
def build() -> None:
    """Build a system directory (system.pdb, system.xml, build.json)."""


@build.command("electrolyte")
@click.argument("recipe")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="System directory to create.")
@click.option("--n-solvent", type=int, default=None,
              help=f"Number of solvent molecules (default {DEFAULT_N_SOLVENT} if --box-edge-nm is not given).")
@click.option("--box-edge-nm", type=float, default=None,
              help="Edge of the cube the solution fills at its estimated density, in nm.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the packing.")
@click.option("--charge-scale", type=float, default=0.8, show_default=True, help="Ion charge scale.")
@click.option("--cutoff-nm", type=float, default=1.0, show_default=True, help="Non-bonded cutoff, nm.")
@click.option("--packmol-timeout-s", type=float, default=300.0, show_default=True,
              help="Give up packing after this many seconds.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def electrolyte(recipe: str, out_dir: str, n_solvent: int | None, box_edge_nm: float | None, seed: int,
                charge_scale: float, cutoff_nm: float, packmol_timeout_s: float, force: bool) -> None:
    """Build a liquid electrolyte box from a RECIPE such as "1.0 M LiPF6 in EC:DMC 1:1 v/v".

    \b
    Also: "1.2 m LiTFSI in PC", "1 M LiPF6 in EC:EMC 3:7 w/w",
          "0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 mol/mol",
          "1 M LiPF6 in EC:DEC 1:1 v/v + 5 wt% FEC".
    """
    from aseimd.build.cell import write_system_dir
    from aseimd.build.electrolyte import build_electrolyte
    from aseimd.fileio import check_new_output

    check_new_output(out_dir, force=force)
    if n_solvent is None and box_edge_nm is None:
        n_solvent = DEFAULT_N_SOLVENT
    cell = build_electrolyte(recipe, n_solvent=n_solvent, box_edge_nm=box_edge_nm, seed=seed,
                             packmol_timeout_s=packmol_timeout_s)
    write_system_dir(cell, out_dir, charge_scale=charge_scale, force=force, cutoff_nm=cutoff_nm)
    p = cell.provenance
    click.echo(f"Built {p['recipe']['canonical']} -> {out_dir}")
    click.echo("  molecules: " + ", ".join(f"{name} {n}" for name, n in p["counts"].items())
               + f" ({cell.n_atoms} atoms)")
    for s in p["salts"]:
        click.echo(f"  {s['salt']}: {s['requested']:g} {s['unit']} requested, "
                   f"{s['achieved']:.3f} {s['unit']} achieved ({s['ion_pairs']} ion pairs)")
    for a in p["additives"]:
        click.echo(f"  {a['species']}: {a['requested']:g} {a['unit']} requested, {a['achieved']:.2f} achieved")
    edge = cell.box_nm[0]
    click.echo(f"  box: {edge:.3f} nm cube, packed at {100 * p['packing']['density_fraction']:.0f} % of the "
               f"estimated density {p['estimated_density_g_per_cm3']:.3f} g/cm3 "
               f"(expect ~{p['estimated_box_edge_nm']:.2f} nm after NPT)")


@build.command("polymer")
@click.argument("name")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="System directory to create.")
@click.option("--n-chains", type=int, default=None, help="Number of chains (default 8).")
@click.option("--n-repeat", type=int, default=None,
              help="Chain length in repeat units (PEO: EO units; LiNafion: side chains per chain).")
@click.option("--molar-mass", "molar_mass", type=float, default=None, help="Chain length as molar mass, g/mol.")
@click.option("--density", "density", type=float, default=None,
              help="Target density, g/cm3 (default: the polymer's experimental density).")
@click.option("--temperature-K", "temperature_K", type=float, default=298.15, show_default=True,
              help="Temperature of the chain-growth torsion statistics, K.")
@click.option("--tacticity", default="atactic", show_default=True,
              type=click.Choice(["atactic", "isotactic", "syndiotactic"]), help="PAN / LiNafion stereo sequence.")
@click.option("--ew", "ew", type=float, default=1100.0, show_default=True,
              help="LiNafion equivalent weight (acid form), g/mol.")
@click.option("--salt", default=None, help="Salt dissolved in the melt, e.g. LiTFSI (PEO only).")
@click.option("--eo-per-li", type=float, default=None, help="Ether O per Li+ (default 16 with --salt).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the chain growth.")
@click.option("--charge-scale", type=float, default=0.8, show_default=True, help="Ion charge scale.")
@click.option("--cutoff-nm", type=float, default=1.0, show_default=True, help="Non-bonded cutoff, nm.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def polymer(name: str, out_dir: str, n_chains, n_repeat, molar_mass, density, temperature_K: float,
            tacticity: str, ew: float, salt, eo_per_li, seed: int, charge_scale: float, cutoff_nm: float,
            force: bool) -> None:
    """Build a bulk polymer melt NAME: PEO, PAN, PDMS or LiNafion (optionally with a salt)."""
    from aseimd.build.cell import write_system_dir
    from aseimd.build.polymer import PolymerSpec, build_melt
    from aseimd.fileio import check_new_output

    check_new_output(out_dir, force=force)
    spec = PolymerSpec(name, n_repeat=n_repeat, molar_mass_g_per_mol=molar_mass, n_chains=n_chains,
                       tacticity=tacticity, ew_g_per_mol=ew)
    cell = build_melt(spec, density_g_per_cm3=density, temperature_K=temperature_K, salt=salt,
                      eo_per_li=eo_per_li, seed=seed)
    write_system_dir(cell, out_dir, charge_scale=charge_scale, force=force, cutoff_nm=cutoff_nm)
    p = cell.provenance
    click.echo(f"Built {p['polymer']['name']} melt -> {out_dir}")
    click.echo(f"  {p['polymer']['chains']} chains, DP {p['polymer']['dp']}, {cell.n_atoms} atoms, "
               f"box {cell.box_nm[0]:.3f} nm cube, {p['density_g_per_cm3']['achieved']:.3f} g/cm3")
    if p.get("salt"):
        click.echo(f"  {p['salt']['salt']}: {p['salt']['ion_pairs']} ion pairs, EO:Li {p['salt']['eo_per_li_achieved']:.1f}")
    if "ew_g_per_mol" in p["polymer"]:
        click.echo(f"  EW {p['polymer']['ew_g_per_mol']['achieved']:.0f} g/mol (requested {ew:g})")
    click.echo(f"  chain growth {p['growth']['atoms_per_s']:.0f} atoms/s, relaxation {p['relax_seconds']:.1f} s")


COMMANDS: list[click.Command] = [build]


@build.command("interface")
@click.argument("spec")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="System directory to create.")
@click.option("--packmol-timeout-s", type=float, default=600.0, show_default=True,
              help="Give up packing the electrolyte layer after this many seconds.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
def interface(spec: str, out_dir: str, packmol_timeout_s: float, force: bool) -> None:
    """Build a Li slab | polymer | electrolyte | polymer cell from SPEC (a YAML file or a shipped name).

    \b
    Shipped specs (systems/): li-electrolyte, li-peo-lipf6, li-pan-lipf6, li-pdms-lipf6,
    li-nafion-lipf6, quickstart.  Every key is described in docs/interface.md.
    """
    from aseimd.build.interface import write_interface_dir
    from aseimd.fileio import check_new_output

    check_new_output(out_dir, force=force)
    cell, _ = write_interface_dir(spec, out_dir, force=force, packmol_timeout_s=packmol_timeout_s)
    p = cell.provenance
    click.echo(f"Built {p['spec'].get('name') or spec} -> {out_dir} ({cell.n_atoms} atoms, box "
               f"{' x '.join(f'{b:.3f}' for b in cell.box_nm)} nm)")
    for layer in p["layers"]:
        lo, hi = layer["z_nm"]
        click.echo(f"  {layer['name']:<15} z {lo:7.3f} .. {hi:7.3f} nm  atoms {layer['atoms'][1] - layer['atoms'][0]}")
    click.echo("  residues: " + ", ".join(f"{name} {n}" for name, n in p["residue_counts"].items()))
