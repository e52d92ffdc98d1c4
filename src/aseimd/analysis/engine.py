"""One pass over a trajectory for all analyses: the analysis contract.

Every analysis is an object with the same life cycle (like MDAnalysis'
``AnalysisBase``, but results carry their time axes, windows and errors):

``prepare(traj)``
    check the options against the trajectory (frame count, box, selections)
    and say what the analysis needs from the pass, either

    * ``(groups, drift)``: unwrapped particle positions of these
      :class:`aseimd.analysis.groups.Group` objects with the drift of a
      reference (``"system"``, ``"none"`` or a Group) removed (the transport
      analyses, which need the whole run at once for their FFTs); or
    * a *stream*: an object with ``atoms`` (atom indices, ascending),
      ``feed(chunk)`` (one :class:`~aseimd.analysis.trajectory.Chunk` of
      exactly those atoms, frames in order) and ``end_pass()`` (``None`` when
      done, or the atom indices of a further pass it needs). Coordination,
      solvent-CN and profiles are streams: neighbour searches and binning work
      chunk by chunk on the wrapped positions and hold only per-frame contacts,
      block sums and histograms, never the run;

the pass (:func:`stream`)
    the engine reads the chunks of the **union** of every analysis' atoms
    **once** (:meth:`Trajectory.iter_chunks`) and feeds every stream per chunk;
    the transport analyses are fed through one
    :class:`~aseimd.analysis.groups.PositionCollector` per drift reference
    (unwrap per chunk, system centre of mass from the same pass, particles
    formed once and shared);
``conclude(positions, traj) -> result``
    FFTs, fits and errors (``positions`` is a
    :class:`~aseimd.analysis.groups.ParticlePositions` for the transport
    analyses, ``None`` for streams); the result object owns its JSON
    (``to_json()``) and its tables (``tables()`` -> ``{name: (headers, columns)}``).

A further pass happens only when an analysis cannot know what to count before
it has seen the whole run: a coordination cut-off taken from the first minimum
of g(r) (``cutoff_source="auto"``) needs the full g(r) before contacts can be
counted, so such an analysis asks for a second pass over its own atoms only.
With every cut-off given, everything is one pass.

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

from aseimd.analysis._arrays import unique
from aseimd.errors import AnalysisError


def _key(group) -> tuple:
    # residue centres of single-atom residues are the atoms: the same particles either way
    com = group.com and group.n_particles != group.atom_indices.size
    return (group.label, com, tuple(int(i) for i in group.atom_indices))


#: Bytes of float32 positions per chunk of the shared pass (the union of every analysis' atoms).
PASS_BYTES = 64 * 1024**2


def is_stream(plan) -> bool:
    """Whether a ``prepare`` result is a stream (``atoms``, ``feed``, ``end_pass``) rather than ``(groups, drift)``."""
    return hasattr(plan, "feed") and hasattr(plan, "end_pass") and hasattr(plan, "atoms")


def stream(traj, streams: Sequence) -> int:
    """Feed every stream from one read per pass of the union of their atoms; return the number of passes.

    Parameters
    ----------
    traj : Trajectory
    streams : sequence of stream objects
        Each with ``atoms`` (ascending atom indices), ``feed(chunk)`` and ``end_pass()``
        (``None`` when done, else the atom indices of the further pass it needs).

    Returns
    -------
    int
        Passes over the frames (1 unless a stream asked for another).
    """
    from aseimd.analysis.trajectory import Chunk

    active = [(s, np.asarray(s.atoms, dtype=int)) for s in streams]
    passes = 0
    while active:
        union = unique(np.concatenate([a for _, a in active]))
        columns = [None if a.size == union.size else np.searchsorted(union, a) for _, a in active]
        chunk_frames = max(1, min(traj.chunk_frames, PASS_BYTES // (12 * union.size)))
        for chunk in traj.iter_chunks(union, chunk_frames=chunk_frames):
            for (s, _), cols in zip(active, columns):
                s.feed(chunk if cols is None else Chunk(chunk.start, chunk.xyz_nm[:, cols], chunk.box_nm))
        passes += 1
        again = []
        for s, _ in active:
            more = s.end_pass()
            if more is not None:
                again.append((s, np.asarray(more, dtype=int)))
        active = again
    return passes


def run_analyses(source, analyses: Sequence, **open_options) -> list:
    """Run several analyses over one read of a trajectory.

    Parameters
    ----------
    source : Trajectory, (top, traj) paths, mdtraj.Trajectory or MDAnalysis.Universe
        Anything :func:`aseimd.analysis.trajectory.open_trajectory` accepts.
    analyses : sequence of analysis objects
        E.g. :class:`~aseimd.analysis.diffusion.DiffusionAnalysis`,
        :class:`~aseimd.analysis.transference.TransferenceAnalysis`,
        :class:`~aseimd.analysis.coordination.CoordinationAnalysis`,
        :class:`~aseimd.analysis.solvent_cn.SolventCNAnalysis`,
        :class:`~aseimd.analysis.profile.ProfileAnalysis`.
    **open_options
        ``dt_ps``, ``start``, ``stop``, ``stride`` when ``source`` is not yet opened.

    Returns
    -------
    list
        One result per analysis, in order.
    """
    from aseimd.analysis.groups import Group, PositionCollector
    from aseimd.analysis.trajectory import open_trajectory

    traj = open_trajectory(source, **open_options)
    if not analyses:
        raise AnalysisError("no analyses given")
    plans = [a.prepare(traj) for a in analyses]  # every option checked before anything is read
    # one position collector per distinct drift reference (normally one: the system centre of mass)
    by_drift: dict = {}
    for k, plan in enumerate(plans):
        if plan is None or is_stream(plan):
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
    for entry in by_drift.values():
        entry["collector"] = PositionCollector(traj, list(entry["groups"].values()), drift=entry["drift"])
    streams = [e["collector"] for e in by_drift.values()] + [p for p in plans if p is not None and is_stream(p)]
    if streams:
        stream(traj, streams)  # the single read (a second only for g(r)-derived cut-offs, over their atoms)
    results: list = [None] * len(analyses)
    from aseimd.analysis import einstein

    with einstein.sharing_curves():  # analyses of one read share whole-run curves of the same particles
        _conclude_transport(traj, analyses, plans, by_drift, results)
    for k, plan in enumerate(plans):
        if plan is None or is_stream(plan):
            results[k] = analyses[k].conclude(None, traj)
            _attach_warnings(traj, results[k])
    return results


def _attach_warnings(traj, result) -> None:
    if traj.warnings and isinstance(getattr(result, "warnings", None), list):
        result.warnings[:0] = [w for w in traj.warnings if w not in result.warnings]  # e.g. a torn last frame


def _conclude_transport(traj, analyses, plans, by_drift, results) -> None:
    from aseimd.analysis.groups import ParticlePositions

    for entry in by_drift.values():
        groups = list(entry["groups"].values())
        pos = entry.pop("collector").result()
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
            _attach_warnings(traj, results[k])
