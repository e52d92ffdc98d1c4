"""Independent replicas of one system pooled into one transport estimate, with a replica cross-check.

Replicas are independent runs of the same system (same atoms in the same
order; different seeds or starting structures). :func:`pool_replicas` reads
each replica once (unwrapped, drift-corrected particle positions, as
:func:`aseimd.analysis.engine.run_analyses` does for one file) and hands the
list of per-replica positions to the analysis' own ``conclude``; the
estimators already pool lists of runs (``method="gls"``,
:mod:`aseimd.analysis.einstein`):

* the whole-run curves are origin-weighted means over the replicas (every
  time origin of every replica counts once; no displacement spans two runs);
* one fit window from the onset test on the pooled self MSDs, and one set of
  GLS weights with the covariance shape of the pooled curve;
* the standard error is the delete-one-block jackknife over the blocks of
  time origins of **all** replicas together (each replica cut into its own
  blocks), so n equal replicas give ~1/sqrt(n) of one replica's error.

Cross-check: every replica is also fitted alone **over the pooled window**
(:meth:`replica_estimates` of the analysis), and the per-replica values are
tested against each other with their own jackknife errors (Cochran's Q,
``Q = sum_r (x_r - x_w)² / se_r²`` with ``x_w`` the inverse-variance mean,
chi² with n-1 degrees of freedom). When p < :data:`CONSISTENCY_P_VALUE` the
replicas disagree beyond their errors (not the same state, not equilibrated,
or block errors that are too small) and a warning says so; the replica-to-
replica standard error ``std(x_r, ddof=1)/sqrt(n)`` is reported beside the
pooled one.

An analysis takes part when it has ``replica_estimates(positions, traj,
pooled_report)`` and its report has ``estimates()``: both return
``{json path (tuple of keys): (value, standard error)}`` of the quantities a
user reads (D per group; t+ and sigma, D+ and D-)
(:class:`~aseimd.analysis.diffusion.DiffusionAnalysis`,
:class:`~aseimd.analysis.transference.TransferenceAnalysis`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aseimd.errors import AnalysisError

#: Replicas "disagree" when Cochran's Q test gives a p-value below this.
CONSISTENCY_P_VALUE = 0.01
#: Relative tolerance on equal frame spacing of replicas.
DT_RTOL = 1e-6


@dataclass(frozen=True)
class PooledPositions:
    """Particle positions of several replicas, in the interface ``conclude`` reads.

    Attributes
    ----------
    replicas : list of aseimd.analysis.groups.ParticlePositions
    """

    replicas: list

    def of(self, label: str) -> list[np.ndarray]:
        """Positions of one group in every replica, a list of shape=(n_frames_r, n_particles, 3) arrays in nm."""
        return [p.of(label) for p in self.replicas]

    @property
    def box_nm(self) -> np.ndarray | None:
        """Box vectors of every frame of every replica, shape=(sum n_frames_r, 3, 3), in nm (None without a box)."""
        if self.replicas[0].box_nm is None:
            return None
        return np.concatenate([p.box_nm for p in self.replicas])

    @property
    def drift(self) -> str:
        """What was subtracted (the same for every replica)."""
        return self.replicas[0].drift


@dataclass
class ReplicaEstimate:
    """One reported quantity: pooled, per replica, and the consistency of the replicas.

    Attributes
    ----------
    pooled, pooled_stderr : float
        The pooled estimate and its jackknife error over the blocks of all replicas.
    per_replica, per_replica_stderr : list of float
        Each replica alone over the pooled fit window, with its own jackknife error.
    between_replicas_stderr : float
        ``std(per_replica, ddof=1) / sqrt(n)`` (for replicas of equal length, comparable to ``pooled_stderr``).
    chi2 : float or None
        Cochran's Q of the per-replica values (None when an error is zero or not finite).
    consistency_p_value : float or None
        P(chi²_{n-1} >= Q).
    """

    pooled: float
    pooled_stderr: float
    per_replica: list[float]
    per_replica_stderr: list[float]
    between_replicas_stderr: float
    chi2: float | None
    consistency_p_value: float | None

    @property
    def consistent(self) -> bool:
        """False when the replicas disagree beyond their errors (p < :data:`CONSISTENCY_P_VALUE`)."""
        return self.consistency_p_value is None or self.consistency_p_value >= CONSISTENCY_P_VALUE

    def to_json(self) -> dict:
        """The JSON block of this quantity."""
        return {"pooled": self.pooled, "pooled_stderr": self.pooled_stderr, "per_replica": self.per_replica,
                "per_replica_stderr": self.per_replica_stderr,
                "between_replicas_stderr": self.between_replicas_stderr, "chi2": self.chi2,
                "consistency_p_value": self.consistency_p_value, "consistent": self.consistent}


def replica_consistency(values: Sequence[float], stderrs: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Between-replica standard error, Cochran's Q and its p-value for per-replica estimates.

    Examples
    --------
    Two replicas two of their errors apart (Q = 2, one degree of freedom):

    >>> se, q, p = replica_consistency([1.0, 1.2], [0.1, 0.1])
    >>> round(se, 6), round(q, 6), round(p, 4)
    (0.1, 2.0, 0.1573)
    """
    from aseimd.analysis._distributions import chi2_sf

    x = np.asarray(values, dtype=float)
    s = np.asarray(stderrs, dtype=float)
    between = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    scale = max(float(np.max(np.abs(x))), 1e-300) if x.size else 1.0
    if x.size < 2 or not (np.all(np.isfinite(s)) and np.all(s > 1e-9 * scale)):
        return between, None, None  # e.g. t+ fixed by a constraint: nothing to test
    w = 1.0 / s**2
    mean = float(np.sum(w * x) / np.sum(w))
    q = float(np.sum(w * (x - mean) ** 2))
    return between, q, float(chi2_sf(q, x.size - 1))


@dataclass
class ReplicaReport:
    """The pooled result of one analysis over several replicas, and the replica cross-check.

    Attributes
    ----------
    pooled : report object
        The analysis' own report of the pooled data (``to_json()``, ``tables()``).
    trajectories : list of aseimd.analysis.trajectory.Trajectory
    estimates : dict of tuple to ReplicaEstimate
        Keyed by the JSON path of the quantity in the pooled report, e.g. ``("Li", "D_m2_per_s")``.
    warnings : list of str
        The pooled report's warnings, then the replica disagreements.
    """

    pooled: object
    trajectories: list
    estimates: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_replicas(self) -> int:
        """Number of replicas pooled."""
        return len(self.trajectories)

    @property
    def n_frames(self) -> list[int]:
        """Frames analysed in each replica."""
        return [t.n_frames for t in self.trajectories]

    def meta(self) -> dict:
        """The ``meta`` block: the first replica's (as for one file), ``n_replicas``, every replica's own
        meta under ``replicas``, and the trajectory warnings of all of them."""
        metas = [t.meta() for t in self.trajectories]
        return metas[0] | {"n_replicas": self.n_replicas, "replicas": metas,
                           "trajectory_warnings": [w for m in metas for w in m["trajectory_warnings"]]}

    def tables(self) -> dict:
        """The pooled report's tables (curves pooled over the replicas)."""
        return self.pooled.tables()

    def to_json(self) -> dict:
        """The pooled report's JSON (keys unchanged), its ``warnings`` with the replica ones, and ``replicas``."""
        out = self.pooled.to_json()
        estimates: dict = {}
        for path, est in self.estimates.items():
            node = estimates
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = est.to_json()
        out["warnings"] = list(self.warnings)
        out["replicas"] = {
            "n_replicas": self.n_replicas,
            "n_frames": self.n_frames,
            "trajectories": [str(t.traj_path) for t in self.trajectories],
            "pooling": "curves: origin-weighted means over replicas; one fit window (onset test on the pooled "
                       "self MSDs); stderr: jackknife over the blocks of time origins of all replicas",
            "per_replica": "each replica alone over the pooled fit window, with its own jackknife error; "
                           "replicas disagree when Cochran's Q (chi², n-1 dof) has p < "
                           f"{CONSISTENCY_P_VALUE}",
            "estimates": estimates,
        }
        return out


def check_replicas(trajs: Sequence) -> None:
    """Replicas must be the same system at the same frame spacing, and distinct files.

    Raises
    ------
    AnalysisError
        Naming the first mismatch: atom count, an atom's name / residue / element, frame spacing, a file given twice.
    """
    first = trajs[0]

    def atoms(t):
        table = t.atoms
        return [(n, table.residue_names[r], e) for n, r, e in zip(table.names, table.residue, table.symbols,
                                                                   strict=True)]

    ref = atoms(first)
    seen = {}
    for k, t in enumerate(trajs, start=1):
        key = str(t.traj_path.resolve()) if t.traj_path.exists() else None
        if key is not None and key in seen:
            raise AnalysisError(f"replica {k} is the same trajectory as replica {seen[key]} ({str(t.traj_path)!r}); "
                                "replicas must be independent runs")
        if key is not None:
            seen[key] = k
        if k == 1:
            continue
        where = f"replica {k} ({str(t.top_path)!r})"
        if t.n_atoms != first.n_atoms:
            raise AnalysisError(f"{where} has {t.n_atoms} atoms, replica 1 ({str(first.top_path)!r}) "
                                f"{first.n_atoms}; replicas must be the same system")
        for i, mine in enumerate(atoms(t)):
            if mine != ref[i]:
                raise AnalysisError(
                    f"{where}: atom {i} is {mine[0]} of residue {mine[1]}, in replica 1 it is {ref[i][0]} of "
                    f"residue {ref[i][1]}; replicas must have the same atoms in the same order")
        if not np.isclose(t.dt_ps, first.dt_ps, rtol=DT_RTOL, atol=0.0):
            raise AnalysisError(
                f"replica {k} ({str(t.traj_path)!r}) has frames every {t.dt_ps:g} ps, replica 1 every "
                f"{first.dt_ps:g} ps; pool replicas of equal frame spacing (e.g. --stride on the finer one "
                "in a separate analysis)")
        if t.has_box != first.has_box:
            raise AnalysisError(f"replica {k} ({str(t.traj_path)!r}) {'has' if t.has_box else 'has no'} unit cell, "
                                f"replica 1 {'has' if first.has_box else 'has none'}")


def _check_poolable(analysis) -> None:
    if not hasattr(analysis, "replica_estimates"):
        raise AnalysisError(f"{getattr(analysis, 'name', type(analysis).__name__)} does not pool replicas; "
                            "analyse each replica on its own")
    if getattr(analysis, "method", "gls") != "gls":
        raise AnalysisError(f"replicas are pooled by --method gls only, got --method {analysis.method}")
    if getattr(analysis, "z_layers", None) is not None or getattr(analysis, "layer_edges_nm", None) is not None:
        raise AnalysisError("z-layer diffusion is not pooled over replicas; analyse each replica on its own "
                            "(drop --z-layers / --layer-edges-nm to pool the whole-box D)")


def pool_replicas(sources: Sequence, analysis, **open_options) -> ReplicaReport:
    """Run one transport analysis over several independent replicas, pooled, with a per-replica cross-check.

    Parameters
    ----------
    sources : sequence
        Two or more of anything :func:`aseimd.analysis.trajectory.open_trajectory` accepts
        ((top, traj) paths, mdtraj Trajectories, opened Trajectories, ...).
    analysis : DiffusionAnalysis or TransferenceAnalysis
        With ``method="gls"`` (and, for diffusion, no z layers).
    **open_options
        ``dt_ps``, ``start``, ``stop``, ``stride``: the same for every replica.

    Returns
    -------
    ReplicaReport

    Raises
    ------
    AnalysisError
        Fewer than two replicas, replicas that are not the same system or frame spacing,
        or an analysis that does not pool.
    """
    from aseimd.analysis.groups import load_positions
    from aseimd.analysis.trajectory import open_trajectory

    if len(sources) < 2:
        raise AnalysisError(f"pooling needs at least 2 replicas, got {len(sources)}")
    _check_poolable(analysis)
    for k, s in enumerate(sources[1:], start=2):
        same = next((j for j, r in enumerate(sources[:k - 1], start=1) if r is s and not isinstance(s, tuple)), None)
        if same is not None:  # one object in memory given twice (files are compared by path below)
            raise AnalysisError(f"replica {k} is the same trajectory as replica {same}; replicas must be "
                                "independent runs")
    trajs = [open_trajectory(s, **open_options) for s in sources]
    check_replicas(trajs)
    plans = []
    for t in trajs:  # every option checked against every replica before anything is read
        plan = analysis.prepare(t)
        if plan is None or not isinstance(plan, tuple):
            raise AnalysisError(f"{analysis.name} does not pool replicas; analyse each replica on its own")
        plans.append(plan)
    ref_groups = plans[0][0]
    for k, (groups, _) in enumerate(plans[1:], start=2):
        for g, h in zip(ref_groups, groups, strict=True):
            if not (np.array_equal(g.atom_indices, h.atom_indices) and np.array_equal(g.particle_of_atom,
                                                                                       h.particle_of_atom)):
                raise AnalysisError(f"group {g.label!r} selects other atoms in replica {k} than in replica 1")
    positions = [load_positions(t, groups, drift=drift) for t, (groups, drift) in zip(trajs, plans, strict=True)]
    pooled = analysis.conclude(PooledPositions(positions), trajs[0])
    warnings = [w for t in trajs for w in t.warnings]
    if isinstance(getattr(pooled, "warnings", None), list):
        pooled.warnings[:0] = [w for w in warnings if w not in pooled.warnings]
    per = [analysis.replica_estimates(p, t, pooled) for p, t in zip(positions, trajs, strict=True)]
    estimates: dict = {}
    disagreements: list[str] = []
    for path, (value, se) in pooled.estimates().items():
        xs = [float(r[path][0]) for r in per]
        ss = [float(r[path][1]) for r in per]
        between, q, p = replica_consistency(xs, ss)
        est = ReplicaEstimate(float(value), float(se), xs, ss, between, q, p)
        estimates[path] = est
        if not est.consistent:
            name = "/".join(path)
            values = ", ".join(f"{x:.4g} ± {s:.2g}" for x, s in zip(xs, ss, strict=True))
            disagreements.append(
                f"replicas disagree on {name} beyond their errors: {values} (Cochran's Q = {q:.3g}, "
                f"{len(xs) - 1} dof, p = {p:.2g}); they may not sample the same state (equilibration, composition) "
                f"-- the replica-to-replica standard error is {between:.2g} against the pooled {se:.2g}")
    return ReplicaReport(pooled, trajs, estimates, list(getattr(pooled, "warnings", [])) + disagreements)


__all__ = ["PooledPositions", "ReplicaEstimate", "ReplicaReport", "check_replicas", "pool_replicas",
           "replica_consistency"]
