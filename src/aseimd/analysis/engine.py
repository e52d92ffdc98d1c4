"""One pass over a trajectory for several analyses: the analysis contract.

Every analysis is an object with the same life cycle (like MDAnalysis'
``AnalysisBase``, but results carry their time axes, windows and errors):

``prepare(traj) -> (groups, drift)`` or ``None``
    check the options against the trajectory (frame count, box, selections)
    and say which particle groups (:class:`aseimd.analysis.groups.Group`) it
    needs and which drift reference (``"system"``, ``"none"`` or a Group);
    ``None`` for analyses that stream their own frames (coordination,
    solvent-CN, profiles: neighbour searches and binning work chunk by chunk on
    wrapped positions, so they do not hold the run in memory);
frames
    the engine reads the trajectory **once** for all analyses that share a
    drift reference: the union of their atoms (every atom when the system
    centre of mass is removed), unwrapped once, particles formed once;
``conclude(positions, traj) -> result``
    FFTs, fits and errors; the result object owns its JSON (``to_json()``)
    and its tables (``tables()`` -> ``{name: (headers, columns)}``).

Example
-------
>>> from aseimd.analysis import run_analyses, DiffusionAnalysis, TransferenceAnalysis  # doctest: +SKIP
>>> diff, tr = run_analyses(("system.pdb", "trajectory.dcd"), [                          # doctest: +SKIP
...     DiffusionAnalysis({"Li": "resname LI", "PF6": "resname PF6"}, com=True),
...     TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=298.15)])
>>> diff.to_json()["Li"]["D_m2_per_s"], tr.to_json()["t_plus_onsager"]                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseimd.errors import AnalysisError


def _key(group) -> tuple:
    # residue centres of single-atom residues are the atoms: the same particles either way
    com = group.com and group.n_particles != group.atom_indices.size
    return (group.label, com, tuple(int(i) for i in group.atom_indices))


def run_analyses(source, analyses: Sequence, **open_options) -> list:
    """Run several analyses over one read of a trajectory.

    Parameters
    ----------
    source : Trajectory, (top, traj) paths, mdtraj.Trajectory or MDAnalysis.Universe
        Anything :func:`aseimd.analysis.trajectory.open_trajectory` accepts.
    analyses : sequence of analysis objects
        E.g. :class:`~aseimd.analysis.diffusion.DiffusionAnalysis`,
        :class:`~aseimd.analysis.transference.TransferenceAnalysis`.
    **open_options
        ``dt_ps``, ``start``, ``stop``, ``stride`` when ``source`` is not yet opened.

    Returns
    -------
    list
        One result per analysis, in order.
    """
    from aseimd.analysis.groups import Group, ParticlePositions, load_positions
    from aseimd.analysis.trajectory import open_trajectory

    traj = open_trajectory(source, **open_options)
    if not analyses:
        raise AnalysisError("no analyses given")
    plans = [a.prepare(traj) for a in analyses]  # every option checked before anything is read
    # one read per distinct drift reference (normally one: the system centre of mass)
    by_drift: dict = {}
    for k, plan in enumerate(plans):
        if plan is None:  # an analysis that streams its own frames (neighbour searches, profiles)
            continue
        groups, drift = plan
        dkey = drift if isinstance(drift, str) else ("group",) + _key(drift)
        entry = by_drift.setdefault(dkey, {"drift": drift, "groups": {}, "members": []})
        for g in groups:
            gk = _key(g)
            clash = [v for kk, v in entry["groups"].items() if v.label == g.label and kk != gk]
            if clash:  # same label, different atoms: keep both under distinct internal labels
                g = Group(f"{g.label}#{k}", *[getattr(g, f) for f in ("selection", "atom_indices",
                          "particle_of_atom", "atom_masses", "particle_masses", "particle_residues",
                          "formal_charges", "com", "atom_residues")])
                gk = _key(g)
            entry["groups"].setdefault(gk, g)
        entry["members"].append(k)
    results: list = [None] * len(analyses)
    from aseimd.analysis import einstein

    with einstein.sharing_curves():  # analyses of one read share whole-run curves of the same particles
        _conclude_all(traj, analyses, plans, by_drift, results)
    for k, plan in enumerate(plans):
        if plan is None:
            results[k] = analyses[k].conclude(None, traj)
            if traj.warnings and isinstance(getattr(results[k], "warnings", None), list):
                results[k].warnings[:0] = list(traj.warnings)
    return results


def _conclude_all(traj, analyses, plans, by_drift, results) -> None:
    from aseimd.analysis.groups import ParticlePositions, load_positions

    for entry in by_drift.values():
        groups = list(entry["groups"].values())
        pos = load_positions(traj, groups, drift=entry["drift"])
        for k in entry["members"]:
            own = plans[k][0]
            slices = {}
            for g in own:
                match = entry["groups"].get(_key(g))
                if match is None:
                    match = next(v for v in groups if v.label.startswith(g.label + "#") and
                                 np.array_equal(v.atom_indices, g.atom_indices) and v.com == g.com)
                slices[g.label] = pos.slices[match.label]
            view = ParticlePositions(pos.xyz_nm, slices, pos.box_nm, pos.drift_nm, pos.drift)
            results[k] = analyses[k].conclude(view, traj)
            if traj.warnings and isinstance(getattr(results[k], "warnings", None), list):
                results[k].warnings[:0] = list(traj.warnings)  # e.g. a torn last frame: said with the numbers
