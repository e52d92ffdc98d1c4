"""The stacked interface cell: ``Li slab | polymer | electrolyte | polymer | (periodic image of the slab)``.

Fully periodic and symmetric along z, no vacuum (so no slab correction of the
electrostatics is needed). Built from an :class:`~aseimd.build.spec.InterfaceSpec`:

1. the Li slab (:func:`aseimd.build.slab.build_li_slab`) fixes the lateral box:
   whole lattice repeats, so the slab is seamless across x and y;
2. two polymer layers of the requested thickness on that lateral box
   (:func:`aseimd.build.polymer.build_polymer_layer`, independent seeds), one
   on each face of the slab; none for the bare-Li control;
3. the electrolyte layer: the recipe's counts come from the volume
   ``Lx * Ly * thickness_nm`` at the recipe's estimated density
   (:func:`aseimd.build.composition.count_molecules`), packed by Packmol
   (:func:`aseimd.build.electrolyte.pack_composition`) into a layer
   ``1 / PACKING_DENSITY_FRACTION`` times thicker (the same 85 % start density
   as the bulk builder); the z-only NPT stage of ``workflows/interface.yaml``
   compresses it;
4. layers are stacked along z with ``gap_nm`` between the outermost atoms of
   neighbours (measured, not assumed), and the box ends ``gap_nm`` above the
   top layer, where the periodic image of the slab begins.

The cell's provenance holds the resolved spec and a ``layers`` list (name, z
range in nm, atom index range) that analysis can use for layer-resolved
quantities.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aseimd.build.cell import Cell
from aseimd.build.spec import InterfaceSpec, load_interface_spec
from aseimd.errors import BuildError

#: Offsets that derive the seed of each random sub-build from the spec seed.
_SEED_OFFSETS = {"polymer_bottom": 1, "electrolyte": 2, "polymer_top": 3}


def _sub_seed(seed: int, part: str) -> int:
    return 10 * int(seed) + _SEED_OFFSETS[part]


def _append_topology(dst, src) -> None:
    """Append every chain, residue, atom and bond of ``src`` to ``dst`` (in place)."""
    new_atoms = {}
    for chain in src.chains():
        new_chain = dst.addChain()
        for res in chain.residues():
            new_res = dst.addResidue(res.name, new_chain)
            for atom in res.atoms():
                new_atoms[atom.index] = dst.addAtom(atom.name, atom.element, new_res)
    for bond in src.bonds():
        dst.addBond(new_atoms[bond[0].index], new_atoms[bond[1].index], bond.type, bond.order)


#: Atoms per Packmol run: thicker electrolyte layers are packed as stacked sub-layers of about this many
#: atoms (Packmol's time grows faster than linearly with the molecule count), in parallel processes.
SUBLAYER_ATOMS = 4000
#: Thinnest sub-layer, nm (room for the largest solvent molecules).
MIN_SUBLAYER_NM = 1.5


def _split(counts: tuple[int, ...], n: int, k: int) -> tuple[int, ...]:
    """Part ``k`` of ``n`` of every count (the same rule for every species, so sub-layers stay neutral)."""
    return tuple(c // n + (1 if k < c % n else 0) for c in counts)


def _atoms_per_molecule(name: str) -> int:
    from aseimd.forcefield.loader import residue_templates
    from aseimd.species import get_species

    return len(residue_templates()[get_species(name).residue].atoms)


def _pack_layer(composition, box_xy_nm, packed_nm: float, seed: int, tolerance_nm: float, timeout_s: float):
    """Pack a composition into a layer ``box_xy x packed_nm``, as stacked sub-layers packed concurrently.

    Each sub-layer is packed with periodic boundaries in x, y and z (so the
    Packmol tolerance holds across its top/bottom seam), then the sub-layers are
    stacked ``tolerance_nm`` apart: the seams are no closer than Packmol's own
    contacts. Returns (topology, positions_nm, racemic species, n_sublayers).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from aseimd.build.cell import topology_from_molecules
    from aseimd.build.electrolyte import pack_composition
    from aseimd.build.molecule import molecule

    counts = composition.species_counts
    n_atoms = sum(n * _atoms_per_molecule(name) for name, n in counts.items())
    n_sub = max(1, min(-(-n_atoms // SUBLAYER_ATOMS), int(packed_nm // MIN_SUBLAYER_NM)))
    subs = [replace(composition, solvent_counts=_split(composition.solvent_counts, n_sub, k),
                    salt_counts=_split(composition.salt_counts, n_sub, k),
                    additive_counts=_split(composition.additive_counts, n_sub, k)) for k in range(n_sub)]
    total_volume = composition.volume_nm3
    heights = [packed_nm * sub.volume_nm3 / total_volume for sub in subs]

    def pack(k):
        box = np.array([box_xy_nm[0], box_xy_nm[1], heights[k]])
        return pack_composition(subs[k], box, seed=seed + 7919 * k, tolerance_nm=tolerance_nm, timeout_s=timeout_s)

    with ThreadPoolExecutor(max_workers=max(1, min(n_sub, os.cpu_count() or 1))) as pool:
        packed = list(pool.map(pack, range(n_sub)))
    # stack the sub-layers, then regroup atoms by species (ions first, as in a bulk box)
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in counts}
    racemic: set[str] = set()
    cursor = 0.0
    for k, (_, pos, rac) in enumerate(packed):
        pos = pos.copy()
        lo, hi = pos[:, 2].min(), pos[:, 2].max()
        pos[:, 2] += cursor - lo
        cursor += hi - lo + tolerance_nm
        racemic.update(rac)
        start = 0
        for name, n in subs[k].species_counts.items():
            size = n * _atoms_per_molecule(name)
            blocks[name].append(pos[start:start + size])
            start += size
    topology = topology_from_molecules([(molecule(name, seed=seed), n) for name, n in counts.items()])
    positions = np.concatenate([np.concatenate(blocks[name]) for name in counts if counts[name] > 0])
    return topology, positions, sorted(racemic), n_sub


def _electrolyte_layer(spec: InterfaceSpec, box_xy_nm: np.ndarray, timeout_s: float) -> Cell:
    from aseimd.build.composition import CM3_PER_NM3, count_molecules
    from aseimd.build.electrolyte import PACKING_DENSITY_FRACTION, PACKING_TOLERANCE_NM
    from aseimd.build.packing import packmol_executable, packmol_version
    from aseimd.build.recipe import Recipe

    layer = spec.electrolyte
    recipe = Recipe.parse(layer.recipe)
    volume_nm3 = float(box_xy_nm[0] * box_xy_nm[1] * layer.thickness_nm)
    try:
        composition = count_molecules(recipe, box_edge_nm=volume_nm3 ** (1.0 / 3.0))
    except BuildError as exc:
        raise BuildError(f"electrolyte layer too thin: {box_xy_nm[0]:.2f} x {box_xy_nm[1]:.2f} x "
                         f"{layer.thickness_nm:g} nm ({volume_nm3:.1f} nm^3) cannot hold the recipe "
                         f"({' '.join(str(exc).split(';')[0].split())})") from None
    packed_nm = layer.thickness_nm / PACKING_DENSITY_FRACTION
    topology, positions, racemic, n_sub = _pack_layer(composition, box_xy_nm, packed_nm,
                                                      _sub_seed(spec.seed, "electrolyte"), PACKING_TOLERANCE_NM,
                                                      timeout_s)
    box = np.array([box_xy_nm[0], box_xy_nm[1], packed_nm])
    report = composition.report()
    version = packmol_version(str(packmol_executable()))
    provenance = {
        "recipe": {"requested": layer.recipe, "canonical": str(recipe)},
        "thickness_nm": layer.thickness_nm,
        "volume_nm3": volume_nm3,
        "racemic_species": racemic,
        **report,
        "packing": {
            "program": "packmol", "version": ".".join(str(v) for v in version),
            "citation": "L. Martinez et al., J. Comput. Chem. 30, 2157 (2009)",
            "tolerance_nm": PACKING_TOLERANCE_NM, "density_fraction": PACKING_DENSITY_FRACTION,
            "packed_thickness_nm": packed_nm, "sublayers": n_sub,
            "packed_density_g_per_cm3": composition.amounts.mass_g / (float(np.prod(box)) * CM3_PER_NM3),
        },
    }
    return Cell(topology=topology, positions_nm=positions, box_nm=box, provenance=provenance)


def _polymer_layer(spec: InterfaceSpec, box_xy_nm: np.ndarray, part: str) -> Cell:
    from aseimd.build.polymer import build_polymer_layer

    p = spec.polymer
    if p.layer_salt() is not None:
        from aseimd.build.layer_salt import build_salted_layer

        return build_salted_layer(p.polymer_spec(), p.layer_salt(), box_xy_nm=(float(box_xy_nm[0]), float(box_xy_nm[1])),
                                  thickness_nm=p.thickness_nm, density_g_per_cm3=p.density_g_per_cm3,
                                  temperature_K=spec.temperature_K, seed=_sub_seed(spec.seed, part))
    return build_polymer_layer(p.polymer_spec(), box_xy_nm=(float(box_xy_nm[0]), float(box_xy_nm[1])),
                               thickness_nm=p.thickness_nm, density_g_per_cm3=p.density_g_per_cm3,
                               temperature_K=spec.temperature_K, seed=_sub_seed(spec.seed, part))


#: Rough atom density of polymer and electrolyte layers (atoms/nm^3), to decide on parallel layer builds.
_ATOMS_PER_NM3 = 100.0
#: Cells with at least this many (estimated) layer atoms build their layers in parallel processes.
PARALLEL_MIN_ATOMS = 10000


_WORKER = (
    "import pickle, sys\n"
    "func, args = pickle.load(sys.stdin.buffer)\n"
    "try:\n"
    "    out = (True, func(*args))\n"
    "except Exception as exc:\n"
    "    out = (False, exc)\n"
    "pickle.dump(out, sys.stdout.buffer)\n"
)


def _run_jobs(jobs, parallel: bool) -> list[Cell]:
    """Run the layer builders; with ``parallel``, each in its own fresh Python process at the same time.

    Fresh interpreters (not ``multiprocessing``): no forked OpenMM or thread state, and no
    re-import of the caller's ``__main__``. Each child gets this process's ``sys.path``; an
    exception in a child (e.g. a BuildError) is raised here.
    """
    import os
    import pickle
    import subprocess
    import sys

    if not parallel or len(jobs) == 1 or (os.cpu_count() or 1) < 2:
        return [func(*args) for _, func, args in jobs]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    procs = []
    for _, func, args in jobs:
        proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env)
        proc.stdin.write(pickle.dumps((func, args)))
        proc.stdin.close()
        procs.append(proc)
    results = []
    for (name, _, _), proc in zip(jobs, procs):
        data = proc.stdout.read()
        if proc.wait() != 0 or not data:
            raise BuildError(f"building the {name} layer in a worker process failed (exit {proc.returncode})")
        ok, value = pickle.loads(data)
        if not ok:
            for other in procs:
                other.kill()
            raise value
        results.append(value)
    return results


def _layer_salt_counts(name: str, part: Cell) -> dict:
    """``{"salt": {salt: ion pairs}}`` of a layer for build.json's ``layers`` (empty for the slab)."""
    prov = part.provenance or {}
    if name.startswith("polymer"):
        s = prov.get("salt")
        return {"salt": {s["salt"]: s["ion_pairs"]} if s else {}}
    if name == "electrolyte":
        return {"salt": {s["salt"]: s["ion_pairs"] for s in prov.get("salts", [])}}
    return {}


def _check_equilibrium_height(spec: InterfaceSpec, slab: Cell) -> None:
    """Refuse, before anything is packed, a cell whose height after z-only NPT would be below twice the cut-off.

    The electrolyte is packed at :data:`~aseimd.build.electrolyte.PACKING_DENSITY_FRACTION` of its density and
    shrinks to ``electrolyte.thickness_nm`` in NPT, so the packed height passing the cut-off check is not
    enough: the expected height (slab, layer thicknesses, one gap per part) must be at least
    2 cutoff / (1 - :data:`~aseimd.build.composition.EQUILIBRIUM_EDGE_MARGIN`), as for bulk boxes.
    """
    from aseimd.build.composition import EQUILIBRIUM_EDGE_MARGIN
    from aseimd.build.electrolyte import PACKING_DENSITY_FRACTION

    slab_nm = float(np.ptp(np.asarray(slab.positions_nm)[:, 2]))
    layers_nm = spec.electrolyte.thickness_nm + (2.0 * spec.polymer.thickness_nm if spec.polymer else 0.0)
    n_parts = 2 + (2 if spec.polymer else 0)
    expected = slab_nm + layers_nm + n_parts * spec.gap_nm
    need = 2.0 * spec.cutoff_nm / (1.0 - EQUILIBRIUM_EDGE_MARGIN)
    if expected < need:
        raise BuildError(
            f"the cell would be ~{expected:.3f} nm along z after NPT (the electrolyte, packed at "
            f"{PACKING_DENSITY_FRACTION:.0%} of its "
            f"density, shrinks to its thickness_nm), less than twice the cut-off with a {EQUILIBRIUM_EDGE_MARGIN:.0%} "
            f"margin ({need:.3f} nm); use electrolyte.thickness_nm >= "
            f"{spec.electrolyte.thickness_nm + need - expected:.2f} or a shorter cutoff_nm")


def build_interface(spec, *, packmol_timeout_s: float = 600.0, parallel: bool | None = None) -> Cell:
    """Build the stacked, fully periodic interface cell of a spec.

    Parameters
    ----------
    spec : InterfaceSpec, mapping, or path-like
        Anything :func:`aseimd.build.spec.load_interface_spec` accepts.
    packmol_timeout_s : float
        Wall-clock limit for packing the electrolyte layer, s.
    parallel : bool or None
        Build the polymer layers and the electrolyte in parallel processes.
        None: when the layers hold about :data:`PARALLEL_MIN_ATOMS` atoms or
        more. The result does not depend on it (each layer has its own seed).

    Returns
    -------
    Cell
        Atoms in stacking order: slab (``LIM``), bottom polymer layer,
        electrolyte, top polymer layer. ``provenance`` holds ``builder``,
        ``spec`` (resolved), ``slab``, ``polymer`` (per layer), ``electrolyte``
        (counts, requested vs achieved composition, packing), ``counts`` (all
        molecules), ``gap_nm`` and ``layers``: a list of
        ``{"name", "z_nm": [lo, hi], "atoms": [first, stop]}`` in stacking order.

    Raises
    ------
    SpecError, BuildError
        Bad spec; a layer too thin for its content; failed packing or polymer growth.
    """
    from openmm import app

    from aseimd.build.slab import build_li_slab

    if not isinstance(spec, InterfaceSpec):
        spec = load_interface_spec(spec)
    slab = build_li_slab(spec.slab.face, layers=spec.slab.layers, repeats=spec.slab.resolved_repeats())
    box_xy = slab.box_nm[:2].copy()
    _check_equilibrium_height(spec, slab)

    jobs = [("electrolyte", _electrolyte_layer, (spec, box_xy, packmol_timeout_s))]
    if spec.polymer is not None:
        jobs = [("polymer_bottom", _polymer_layer, (spec, box_xy, "polymer_bottom")), *jobs,
                ("polymer_top", _polymer_layer, (spec, box_xy, "polymer_top"))]
    if parallel is None:
        layers_nm = spec.electrolyte.thickness_nm + (2 * spec.polymer.thickness_nm if spec.polymer else 0.0)
        parallel = float(box_xy[0] * box_xy[1]) * layers_nm * _ATOMS_PER_NM3 >= PARALLEL_MIN_ATOMS
    parts: list[tuple[str, Cell]] = [("slab", slab), *zip((name for name, _, _ in jobs), _run_jobs(jobs, parallel))]

    topology = app.Topology()
    positions, layers = [], []
    cursor_nm, first = 0.0, 0
    for name, part in parts:
        if not np.allclose(part.box_nm[:2], box_xy, rtol=0, atol=1e-6):
            raise BuildError(f"{name} layer has lateral box {part.box_nm[:2].tolist()} nm, expected "
                             f"{box_xy.tolist()} nm (the slab's)")
        pos = np.array(part.positions_nm, dtype=float, copy=True)
        lo, hi = float(pos[:, 2].min()), float(pos[:, 2].max())
        pos[:, 2] += cursor_nm - lo
        _append_topology(topology, part.topology)
        positions.append(pos)
        stop = first + part.n_atoms
        layers.append({"name": name, "z_nm": [cursor_nm, cursor_nm + hi - lo], "atoms": [first, stop]})
        layers[-1].update(_layer_salt_counts(name, part))
        cursor_nm += hi - lo + spec.gap_nm
        first = stop
    box = np.array([box_xy[0], box_xy[1], cursor_nm])

    counts: dict[str, int] = {}
    for res in topology.residues():
        counts[res.name] = counts.get(res.name, 0) + 1
    provenance = {
        "builder": "interface",
        "spec": spec.to_dict(),
        "seed": spec.seed,
        "slab": slab.provenance["slab"],
        "polymer": {name: part.provenance for name, part in parts if name.startswith("polymer")} or None,
        "electrolyte": dict(parts[[n for n, _ in parts].index("electrolyte")][1].provenance),
        "residue_counts": counts,
        "gap_nm": spec.gap_nm,
        "layers": layers,
        "lj_long_range_correction": spec.lj_long_range_correction,
    }
    return Cell(topology=topology, positions_nm=np.concatenate(positions), box_nm=box, provenance=provenance)


def write_interface_dir(spec, out_dir: str | os.PathLike, *, force: bool = False,
                        packmol_timeout_s: float = 600.0) -> tuple[Cell, Path]:
    """Build an interface cell and write its system directory (``aseimd build interface``).

    The spec's ``charge_scale``, ``cutoff_nm`` and ``lj_long_range_correction``
    go to :func:`aseimd.forcefield.create_system` and into ``build.json``.

    Returns
    -------
    (Cell, pathlib.Path)

    Raises
    ------
    OutputExistsError
        ``out_dir`` exists and ``force`` is false (checked before any work).
    """
    from aseimd.build.cell import write_system_dir
    from aseimd.fileio import check_new_output

    check_new_output(out_dir, force=force)
    if not isinstance(spec, InterfaceSpec):
        spec = load_interface_spec(spec)
    cell = build_interface(spec, packmol_timeout_s=packmol_timeout_s)
    path = write_system_dir(cell, out_dir, charge_scale=spec.charge_scale, force=force,
                            cutoff_nm=spec.cutoff_nm, lj_long_range_correction=spec.lj_long_range_correction)
    return cell, path
