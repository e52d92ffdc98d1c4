"""Coordination: RDFs, coordination numbers, shell compositions, ion-pair speciation, residence times.

One streamed pass (two when a cut-off has to be found from the RDF first) over
the frames, reading only the selected atoms (:meth:`Trajectory.iter_chunks`),
so memory is bounded by the selection and the number of contacts, not by the
trajectory length or the whole system.

Definitions (all per frame, then averaged over frames and centre atoms):

* A *pair* (centre label, shell label) has a cut-off r_c: the first minimum of
  its g(r) (:func:`aseimd.analysis.rdf.first_minimum`, ``cutoff_source="auto"``)
  or a given value (``"given"``). A shell atom is *in the first shell* of a
  centre atom when their minimum-image distance is < r_c. Self pairs (one atom
  in both groups) never count; with ``exclude_intramolecular`` no pair within
  one residue counts.
* ``cn``: mean number of shell ATOMS in the first shell of a centre atom.
  ``cn_molecules``: mean number of distinct shell RESIDUES (molecules) with at
  least one shell atom in the first shell (e.g. Li-O(carbonyl) counts solvent
  molecules; a chelating molecule counts once).
* ``shell_bound_fraction``: fraction of shell residues that have at least one
  centre atom within r_c.
* Shell composition: for each centre atom and frame, the number of distinct
  residues of each shell label in its first shell, e.g. ``Li(EC)3(DMC)1(PF6)0``;
  the distribution over (centre atom, frame) sums to 1.
* Ion-pair speciation (the centre atoms are the cations, one atom per ion; the
  anion label's residues are the anions): a cation is
  SSIP when no anion residue is in its first shell; CIP when exactly one anion
  residue is, and that anion is in the first shell of no other cation; AGG
  otherwise (two or more anions, or one anion shared with another cation).
  Fractions over (cation, frame) sum to 1.
* Residence: a (centre atom, shell residue) pair is bound in a frame when the
  residue is in the atom's first shell. The continuous residence time
  correlation function is C(t) = sum_s H(s, s+t) / sum_{s <= T-1-t} h(s),
  where h(s) counts bound pairs at frame s and H(s, s+t) those bound without
  interruption from s to s+t, over all time origins s. tau is the integral of
  C(t) (trapezoid rule) up to the first lag where C reaches 0, or up to the
  longest lag if it never does (then ``decayed`` is false and tau is a lower bound).
* Standard errors: the frames are cut into ``n_blocks`` consecutive time
  blocks (default 5); stderr = standard deviation of the block means / sqrt(n_blocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aseimd.analysis.fitting import block_stderr
from aseimd.analysis.neighbors import FrameNeighbors, half_min_width
from aseimd.analysis.rdf import RDF, RDFAccumulator, first_minimum
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

#: Default largest RDF distance in nm (clipped to half the shortest box width when not given).
DEFAULT_R_MAX_NM = 1.0


@dataclass(frozen=True)
class Group:
    """A labelled atom selection.

    Attributes
    ----------
    label : str
    selection : str
        The mdtraj selection it came from (or a description).
    indices : numpy.ndarray, shape=(n,), dtype=int
        Atom indices in the topology, ascending.
    residues : numpy.ndarray, shape=(n,), dtype=int
        Topology residue index of each atom.
    """

    label: str
    selection: str
    indices: np.ndarray
    residues: np.ndarray

    @property
    def n_residues(self) -> int:
        """Number of distinct residues the group's atoms belong to."""
        return int(len(np.unique(self.residues)))


@dataclass(frozen=True)
class PairSpec:
    """One centre-shell pair to analyse; ``key`` names it in results, CSV headers and ``cutoffs_nm``."""

    key: str
    center: str
    shell: str
    cutoff_nm: float | None = None


@dataclass
class PairResult:
    """RDF and coordination numbers of one pair (see module doc for definitions)."""

    key: str
    center: str
    shell: str
    rdf: RDF | None
    r_peak_nm: float
    g_peak: float
    cutoff_nm: float | None
    cutoff_source: str | None
    cn: float = float("nan")
    cn_stderr: float = float("nan")
    cn_molecules: float = float("nan")
    cn_molecules_stderr: float = float("nan")
    shell_bound_fraction: float = float("nan")
    shell_bound_fraction_stderr: float = float("nan")
    n_center_atoms: int = 0
    n_shell_atoms: int = 0
    n_shell_residues: int = 0

    def to_dict(self) -> dict:
        """JSON-ready summary (without the g(r) table)."""
        return {
            "center": self.center,
            "shell": self.shell,
            "cn": self.cn,
            "cn_stderr": self.cn_stderr,
            "cn_molecules": self.cn_molecules,
            "cn_molecules_stderr": self.cn_molecules_stderr,
            "cutoff_nm": self.cutoff_nm,
            "cutoff_source": self.cutoff_source,
            "r_peak_nm": self.r_peak_nm,
            "g_peak": self.g_peak,
            "shell_bound_fraction": self.shell_bound_fraction,
            "shell_bound_fraction_stderr": self.shell_bound_fraction_stderr,
            "n_center_atoms": self.n_center_atoms,
            "n_shell_atoms": self.n_shell_atoms,
            "n_shell_residues": self.n_shell_residues,
        }


@dataclass
class ResidenceResult:
    """Continuous residence time correlation function of one pair."""

    key: str
    lag_frames: np.ndarray
    times_ps: np.ndarray
    c_t: np.ndarray
    tau_ps: float
    decayed: bool
    n_runs: int

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "tau_ps": self.tau_ps,
            "decayed": self.decayed,
            "n_binding_events": self.n_runs,
            "method": "integral (trapezoid) of the continuous residence TCF up to its first zero "
                      "or the longest lag; a lower bound if not decayed",
        }


@dataclass
class CoordinationResult:
    """Everything :func:`run_pairs` measured."""

    pairs: dict[str, PairResult]
    groups: dict[str, Group]
    n_frames: int
    dt_ps: float | None
    r_max_nm: float
    bin_nm: float
    n_blocks: int
    compositions: dict | None = None
    speciation: dict | None = None
    residence: dict[str, ResidenceResult] = field(default_factory=dict)
    bound_union: dict | None = None
    solvent_cn: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def rdf_table(self) -> tuple[list[str], list[np.ndarray]]:
        """CSV headers and columns: ``r (nm)``, then ``g(r) KEY`` and ``n(r) KEY`` per pair."""
        first = next(iter(self.pairs.values()))
        headers, cols = ["r (nm)"], [first.rdf.r_nm]
        for key, p in self.pairs.items():
            headers += [f"g(r) {key}", f"n(r) {key}"]
            cols += [p.rdf.g, p.rdf.n]
        return headers, cols

    def residence_table(self) -> tuple[list[str], list[np.ndarray]]:
        """CSV headers and columns: ``Time (ps)``, then ``C(t) KEY`` per pair with a cut-off."""
        headers, cols = ["Time (ps)"], [np.arange(self.n_frames) * (self.dt_ps or 1.0)]
        for key, r in self.residence.items():
            headers.append(f"C(t) {key}")
            cols.append(r.c_t)
        return headers, cols

    def to_dict(self) -> dict:
        """JSON-ready result (SI units named in every key): ``groups``, one block per shell label
        (``cn``, ``cutoff_nm``, ``r_peak_nm``, ...), ``rdf``, and the optional blocks."""
        out = {
            "groups": {
                g.label: {"selection": g.selection, "n_atoms": int(len(g.indices)), "n_residues": g.n_residues}
                for g in self.groups.values()
            },
            **{k: p.to_dict() for k, p in self.pairs.items()},  # one block per shell label (CLI contract)
            "rdf": {"r_max_nm": self.r_max_nm, "bin_nm": self.bin_nm},
            "n_blocks": self.n_blocks,
        }
        if self.compositions is not None:
            out["compositions"] = self.compositions
        if self.speciation is not None:
            out["speciation"] = self.speciation
        if self.residence:
            out["residence"] = {k: r.to_dict() for k, r in self.residence.items()}
        if self.solvent_cn is not None:
            out["solvent_cn"] = self.solvent_cn
        out["warnings"] = list(self.warnings)
        return out


# --------------------------------------------------------------------------- groups


def make_group(traj: Trajectory, label: str, selection: str) -> Group:
    """Select a labelled group in ``traj`` (AnalysisError if empty or invalid)."""
    idx = np.sort(traj.select(selection, label))
    return group_from_indices(traj.topology, label, selection, idx)


def group_from_indices(topology, label: str, selection: str, indices: np.ndarray) -> Group:
    """A :class:`Group` from explicit atom indices of an mdtraj topology."""
    idx = np.sort(np.asarray(indices, dtype=int))
    if idx.size == 0:
        raise AnalysisError(f"group {label!r} ({selection}) matches no atoms")
    res = np.array([topology.atom(int(i)).residue.index for i in idx], dtype=int)
    return Group(label, selection, idx, res)


# --------------------------------------------------------------------------- engine


def run_pairs(
    traj: Trajectory,
    groups: dict[str, Group],
    pairs: list[PairSpec],
    *,
    r_max_nm: float | None = None,
    bin_nm: float = 0.005,
    composition_center: str | None = None,
    anion_pair: str | None = None,
    residence: bool = False,
    bound_union: dict[str, list[str]] | None = None,
    exclude_intramolecular: bool = False,
    n_blocks: int = 5,
    smooth_nm: float = 0.01,
    rdf: bool = True,
) -> CoordinationResult:
    """Analyse centre-shell pairs over a streamed trajectory.

    Parameters
    ----------
    traj : Trajectory
        Opened trajectory (frame range, stride and chunk size already set).
    groups : dict of str to Group
        All groups the pairs refer to.
    pairs : list of PairSpec
        Pairs to analyse; ``cutoff_nm=None`` means "first minimum of the RDF".
    r_max_nm : float, optional
        Largest RDF distance in nm. Default: 1.0 nm clipped, with a warning, to
        half the shortest width of the first frame's box. A given value larger
        than that is an error.
    bin_nm : float
        RDF bin width in nm.
    composition_center : str, optional
        Centre label whose shell compositions are counted over all pairs with that centre.
    anion_pair : str, optional
        Pair key whose shell residues are the anions for ion-pair speciation.
    residence : bool
        Compute continuous residence time correlation functions for every pair.
    bound_union : dict of str to list of str, optional
        Name -> pair keys sharing one shell group: fraction of shell residues bound
        through any of those pairs (used by the solvent-cn mode).
    exclude_intramolecular : bool
        Do not count pairs inside one residue.
    n_blocks : int
        Time blocks for standard errors.
    smooth_nm : float
        Gaussian smoothing width used to locate the RDF's first minimum, in nm.
    rdf : bool
        Histogram g(r) (default). ``False`` needs every cut-off given and only
        searches pairs within the cut-offs (faster; ``PairResult.rdf`` is None).

    Returns
    -------
    CoordinationResult
    """
    _check_pairs(groups, pairs)
    if n_blocks < 2:
        raise AnalysisError(f"n_blocks must be >= 2, got {n_blocks}")
    if not traj.has_box:
        raise AnalysisError(
            f"trajectory {str(traj.traj_path)!r} carries no unit cell; RDFs and coordination "
            "numbers need a periodic box"
        )
    warnings: list[str] = []
    box0 = _first_box(traj)
    half0 = half_min_width(box0)
    if r_max_nm is None:
        r_max_nm = DEFAULT_R_MAX_NM
        if r_max_nm > half0:
            warnings.append(
                f"r_max clipped from {DEFAULT_R_MAX_NM} nm to half the shortest box width, {half0:.4f} nm"
            )
            r_max_nm = half0
    elif r_max_nm > half0 * (1 + 1e-9):
        raise AnalysisError(
            f"--rmax-nm {r_max_nm} exceeds half the shortest box width ({half0:.4f} nm); "
            f"use a value <= {half0:.4f}"
        )
    for p in pairs:
        if p.cutoff_nm is not None and not 0 < p.cutoff_nm <= r_max_nm:
            raise AnalysisError(
                f"cut-off {p.cutoff_nm} nm for {p.key!r} must be > 0 and <= r_max ({r_max_nm:.4f} nm)"
            )
    if traj.n_frames < n_blocks:
        warnings.append(f"only {traj.n_frames} frames for {n_blocks} blocks: no standard errors")

    engine = _Engine(traj, groups, pairs, exclude_intramolecular, r_max_nm, bin_nm)
    cutoffs = {p.key: p.cutoff_nm for p in pairs}
    sources = {p.key: ("given" if p.cutoff_nm is not None else None) for p in pairs}
    need_auto = any(c is None for c in cutoffs.values())
    if not rdf and need_auto:
        missing = [k for k, c in cutoffs.items() if c is None]
        raise AnalysisError(f"without RDFs every cut-off must be given; missing: {', '.join(missing)}")
    if need_auto:
        engine.sweep(histograms=True, cutoffs=None, consumers=[])
        for p in pairs:
            if cutoffs[p.key] is None:
                g_r = engine.rdfs[p.key].result()
                fm = first_minimum(g_r.r_nm, g_r.g, smooth_nm, counts=g_r.counts)
                if fm.found:
                    cutoffs[p.key], sources[p.key] = fm.r_min_nm, "auto"
                else:
                    warnings.append(
                        f"no first minimum found in g(r) of {p.key!r} up to {r_max_nm:.3f} nm; "
                        f"give --cutoff-nm {p.key}=R (no coordination numbers for it)"
                    )
    active = [p.key for p in pairs if cutoffs[p.key] is not None]
    counters = {k: _CNCounter(k, engine.n_frames, n_blocks, engine.pair_sizes[k]) for k in active}
    consumers: list = list(counters.values())
    comp = spec = None
    if composition_center is not None:
        keys = [p.key for p in pairs if p.center == composition_center and p.key in active]
        skipped = [p.key for p in pairs if p.center == composition_center and p.key not in active]
        if skipped:
            warnings.append(f"shell compositions leave out {skipped} (no cut-off)")
        if keys:
            comp = _Compositions(composition_center, keys, len(groups[composition_center].indices))
            consumers.append(comp)
    if anion_pair is not None:
        if anion_pair in active:
            n_cations = engine.pair_sizes[anion_pair]["n_center"]
            spec = _Speciation(anion_pair, engine.n_frames, n_blocks, n_cations)
            consumers.append(spec)
        else:
            warnings.append(f"no ion-pair speciation: the anion pair {anion_pair!r} has no cut-off")
    res_trackers = {k: _Residence(k, engine.n_frames) for k in active} if residence else {}
    consumers += list(res_trackers.values())
    unions = {}
    for name, keys in (bound_union or {}).items():
        keys = [k for k in keys if k in active]
        if keys:
            unions[name] = _BoundUnion(keys, engine.n_frames, n_blocks, engine.shell_residue_count(keys[0]))
            consumers.append(unions[name])

    histograms = rdf and not need_auto
    if active or histograms:
        engine.sweep(histograms=histograms, cutoffs={k: cutoffs[k] for k in active}, consumers=consumers)

    results: dict[str, PairResult] = {}
    for p in pairs:
        g_r = engine.rdfs[p.key].result() if rdf else None
        fm = first_minimum(g_r.r_nm, g_r.g, smooth_nm, counts=g_r.counts) if rdf else None
        sizes = engine.pair_sizes[p.key]
        pr = PairResult(
            key=p.key, center=p.center, shell=p.shell, rdf=g_r,
            r_peak_nm=fm.r_peak_nm if fm else float("nan"), g_peak=fm.g_peak if fm else float("nan"),
            cutoff_nm=cutoffs[p.key], cutoff_source=sources[p.key],
            n_center_atoms=sizes["n_center"], n_shell_atoms=sizes["n_shell"],
            n_shell_residues=sizes["n_shell_residues"],
        )
        if p.key in counters:
            counters[p.key].fill(pr)
        results[p.key] = pr
    dt_ps = traj.dt_ps
    out = CoordinationResult(
        pairs=results, groups=groups, n_frames=engine.n_frames, dt_ps=dt_ps, r_max_nm=r_max_nm,
        bin_nm=bin_nm, n_blocks=n_blocks, warnings=warnings,
    )
    if comp is not None:
        out.compositions = comp.result()
    if spec is not None:
        out.speciation = spec.result()
    for k, tracker in res_trackers.items():
        r = tracker.result(dt_ps)
        out.residence[k] = r
        if r.n_runs and not r.decayed:
            warnings.append(f"residence C(t) of {k!r} has not decayed to 0 within the trajectory; "
                            "tau is a lower bound")
    if unions:
        out.bound_union = {name: u.result() for name, u in unions.items()}
    return out


#: Top-level keys of the coordination JSON besides the shell labels.
RESERVED_JSON_KEYS = ("mode", "groups", "rdf", "n_blocks", "compositions", "speciation", "residence",
                      "solvent_cn", "warnings", "method", "meta")


def _check_pairs(groups: dict[str, Group], pairs: list[PairSpec]) -> None:
    if not pairs:
        raise AnalysisError("no centre-shell pairs to analyse")
    seen = set()
    for p in pairs:
        if p.key in seen:
            raise AnalysisError(f"pair label {p.key!r} is used twice; labels must be unique")
        if p.key in RESERVED_JSON_KEYS:
            raise AnalysisError(f"shell label {p.key!r} is reserved (JSON keys {', '.join(RESERVED_JSON_KEYS)}); "
                                "choose another label")
        seen.add(p.key)
        for label in (p.center, p.shell):
            if label not in groups:
                raise AnalysisError(f"unknown group {label!r}; known: {', '.join(groups)}")


def _first_box(traj: Trajectory) -> np.ndarray:
    """Box vectors (rows, nm) of the first analysed frame."""
    chunk = next(traj.iter_chunks(np.array([0]), chunk_frames=1))
    if chunk.box_nm is None:
        raise AnalysisError("trajectory frames carry no unit cell")
    return chunk.box_nm[0]


class _Engine:
    """Streams frames once per sweep and hands each frame's contacts to the consumers."""

    def __init__(self, traj, groups, pairs, exclude_intramolecular, r_max_nm, bin_nm):
        self.traj = traj
        self.groups = groups
        self.pairs = pairs
        self.r_max_nm = r_max_nm
        self.n_frames = traj.n_frames
        self.exclude_intramolecular = exclude_intramolecular
        self.n_residues_total = traj.topology.n_residues
        used = sorted({p.center for p in pairs} | {p.shell for p in pairs})
        self.union = np.unique(np.concatenate([groups[g].indices for g in used]))
        self.local = {g: np.searchsorted(self.union, groups[g].indices) for g in used}
        self.centers = {p.key: p.center for p in pairs}
        self.pair_sizes = {}
        self.rdfs = {}
        for p in pairs:
            c, s = groups[p.center], groups[p.shell]
            n_excl = self._n_excluded(c, s)
            self.pair_sizes[p.key] = {
                "n_center": len(c.indices), "n_shell": len(s.indices), "n_shell_residues": s.n_residues,
                "shell_residues": s.residues, "center_residues": c.residues,
            }
            n_pairs = len(c.indices) * len(s.indices) - n_excl
            self.rdfs[p.key] = RDFAccumulator(r_max_nm, bin_nm, len(c.indices), n_pairs)

    def shell_residue_count(self, key: str) -> int:
        return self.pair_sizes[key]["n_shell_residues"]

    def _n_excluded(self, c: Group, s: Group) -> int:
        if self.exclude_intramolecular:
            rc, nc = np.unique(c.residues, return_counts=True)
            rs, ns = np.unique(s.residues, return_counts=True)
            _, ic, is_ = np.intersect1d(rc, rs, return_indices=True)
            return int(np.sum(nc[ic] * ns[is_]))
        return int(len(np.intersect1d(c.indices, s.indices)))

    def sweep(self, histograms: bool, cutoffs: dict | None, consumers: list) -> None:
        pairs = [p for p in self.pairs if histograms or (cutoffs and p.key in cutoffs)]
        radius = {
            p.key: (self.r_max_nm if histograms else cutoffs[p.key]) for p in pairs
        }
        for chunk in self.traj.iter_chunks(self.union):
            if chunk.box_nm is None:
                raise AnalysisError("trajectory frames carry no unit cell")
            for f in range(chunk.xyz_nm.shape[0]):
                frame = chunk.start + f
                xyz = chunk.xyz_nm[f].astype(float)
                search = FrameNeighbors(chunk.box_nm[f])
                volume = search.volume_nm3
                contacts = {}
                for p in pairs:
                    c, s = self.groups[p.center], self.groups[p.shell]
                    try:
                        i, j, d = search.pairs(xyz[self.local[p.center]], xyz[self.local[p.shell]],
                                               radius[p.key], b_key=p.shell)
                    except AnalysisError as exc:
                        raise AnalysisError(f"frame {frame}: {exc}") from None
                    if self.exclude_intramolecular:
                        keep = c.residues[i] != s.residues[j]
                    else:
                        keep = c.indices[i] != s.indices[j]
                    i, j, d = i[keep], j[keep], d[keep]
                    if histograms:
                        self.rdfs[p.key].add_frame(d, volume)
                    if cutoffs and p.key in cutoffs:
                        m = d < cutoffs[p.key]
                        contacts[p.key] = _Contacts.of(i[m], s.residues[j[m]], self.n_residues_total)
                for consumer in consumers:
                    consumer.update(frame, contacts, self.pair_sizes)


# --------------------------------------------------------------------------- consumers


def _block_of(frame: int, n_frames: int, n_blocks: int) -> int:
    return min(frame * n_blocks // n_frames, n_blocks - 1)


def _block_mean_stderr(sums: np.ndarray, norms: np.ndarray) -> tuple[float, float]:
    """Overall mean sum/norm and the standard error from the block means."""
    total = float(np.sum(norms))
    if total == 0:
        return float("nan"), float("nan")
    mean = float(np.sum(sums) / total)
    ok = norms > 0
    return mean, block_stderr(sums[ok] / norms[ok])


@dataclass(frozen=True)
class _Contacts:
    """One frame's first-shell contacts of one pair.

    ``n_atom_contacts`` (centre atom, shell atom) pairs; the distinct (centre
    atom, shell residue) pairs as sorted codes ``center * n_residues_total +
    residue`` and split into ``center`` (local centre index) and ``residue``
    (topology residue index).
    """

    n_atom_contacts: int
    code: np.ndarray
    center: np.ndarray
    residue: np.ndarray

    @classmethod
    def of(cls, i: np.ndarray, res: np.ndarray, n_residues_total: int) -> _Contacts:
        code = np.unique(i.astype(np.int64) * n_residues_total + res)
        return cls(len(i), code, code // n_residues_total, code % n_residues_total)


class _CNCounter:
    def __init__(self, key, n_frames, n_blocks, sizes):
        self.key, self.n_frames, self.n_blocks = key, n_frames, n_blocks
        self.atoms = np.zeros(n_blocks)
        self.mols = np.zeros(n_blocks)
        self.bound = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)
        self.sizes = sizes

    def update(self, frame, contacts, pair_sizes):
        c = contacts[self.key]
        b = _block_of(frame, self.n_frames, self.n_blocks)
        self.atoms[b] += c.n_atom_contacts
        self.mols[b] += len(c.code)
        self.bound[b] += len(np.unique(c.residue))
        self.frames[b] += 1

    def fill(self, pr: PairResult) -> None:
        nc, nr = self.sizes["n_center"], self.sizes["n_shell_residues"]
        pr.cn, pr.cn_stderr = _block_mean_stderr(self.atoms, self.frames * nc)
        pr.cn_molecules, pr.cn_molecules_stderr = _block_mean_stderr(self.mols, self.frames * nc)
        pr.shell_bound_fraction, pr.shell_bound_fraction_stderr = _block_mean_stderr(
            self.bound, self.frames * nr
        )


class _Compositions:
    def __init__(self, center, keys, n_center):
        self.center, self.keys, self.n_center = center, keys, n_center
        self.counts: dict[tuple[int, ...], int] = {}
        self.total = 0

    def update(self, frame, contacts, pair_sizes):
        table = np.zeros((self.n_center, len(self.keys)), dtype=np.int64)
        for col, key in enumerate(self.keys):
            table[:, col] = np.bincount(contacts[key].center, minlength=self.n_center)
        rows, n = np.unique(table, axis=0, return_counts=True)
        for row, c in zip(rows, n, strict=True):
            t = tuple(int(x) for x in row)
            self.counts[t] = self.counts.get(t, 0) + int(c)
        self.total += self.n_center

    def result(self) -> dict:
        dist = []
        for row, c in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            name = self.center + "".join(f"({k}){n}" for k, n in zip(self.keys, row, strict=True))
            dist.append({"composition": name, "counts": dict(zip(self.keys, row, strict=True)),
                         "fraction": c / self.total, "n_observations": c})
        mean = {
            k: sum(row[col] * c for row, c in self.counts.items()) / self.total
            for col, k in enumerate(self.keys)
        }
        return {
            "center": self.center,
            "shells": list(self.keys),
            "definition": "distinct residues of each shell label within its cut-off, per centre atom and frame",
            "mean_molecules": mean,
            "distribution": dist,
        }


class _Speciation:
    def __init__(self, key, n_frames, n_blocks, n_cations):
        self.key, self.n_frames, self.n_blocks, self.n_cations = key, n_frames, n_blocks, n_cations
        self.sums = np.zeros((3, n_blocks))
        self.free_anions = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)
        self.n_anions = None
        self.anion_res = None

    def update(self, frame, contacts, pair_sizes):
        if self.anion_res is None:
            self.anion_res = np.unique(pair_sizes[self.key]["shell_residues"])
            self.n_anions = len(self.anion_res)
        c = contacts[self.key]
        ci = c.center
        a = np.searchsorted(self.anion_res, c.residue)
        per_cation = np.bincount(ci, minlength=self.n_cations)
        per_anion = np.bincount(a, minlength=self.n_anions)
        single = per_cation[ci] == 1
        cip_cations = ci[single & (per_anion[a] == 1)]
        n_ssip = int(np.count_nonzero(per_cation == 0))
        n_cip = len(cip_cations)
        b = _block_of(frame, self.n_frames, self.n_blocks)
        self.sums[:, b] += (n_ssip, n_cip, self.n_cations - n_ssip - n_cip)
        self.free_anions[b] += np.count_nonzero(per_anion == 0)
        self.frames[b] += 1

    def result(self) -> dict:
        out: dict = {"anion_pair": self.key}
        for row, name in enumerate(("SSIP", "CIP", "AGG")):
            out[name], out[f"{name}_stderr"] = _block_mean_stderr(self.sums[row], self.frames * self.n_cations)
        out["free_anion_fraction"], out["free_anion_fraction_stderr"] = _block_mean_stderr(
            self.free_anions, self.frames * (self.n_anions or 0)
        )
        out["definitions"] = {
            "SSIP": "no anion residue in the cation's first shell",
            "CIP": "exactly one anion residue in the first shell, and that anion is in no other "
                   "cation's first shell",
            "AGG": "two or more anion residues in the first shell, or one anion shared with another cation",
            "free_anion_fraction": "anion residues in no cation's first shell",
        }
        return out


class _BoundUnion:
    def __init__(self, keys, n_frames, n_blocks, n_residues):
        self.keys, self.n_frames, self.n_blocks, self.n_residues = keys, n_frames, n_blocks, n_residues
        self.bound = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)

    def update(self, frame, contacts, pair_sizes):
        res = [contacts[k].residue for k in self.keys]
        b = _block_of(frame, self.n_frames, self.n_blocks)
        self.bound[b] += len(np.unique(np.concatenate(res)))
        self.frames[b] += 1

    def result(self) -> dict:
        mean, err = _block_mean_stderr(self.bound, self.frames * self.n_residues)
        return {"pairs": list(self.keys), "bound_fraction": mean, "bound_fraction_stderr": err}


class _Residence:
    """Run lengths of uninterrupted (centre atom, shell residue) contacts, streamed."""

    def __init__(self, key, n_frames):
        self.key, self.n_frames = key, n_frames
        self.codes = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(0, dtype=np.int64)
        self.run_hist = np.zeros(n_frames + 1, dtype=np.int64)
        self.bound_per_frame = np.zeros(n_frames, dtype=np.int64)
        self.last_frame = -1

    def update(self, frame, contacts, pair_sizes):
        if frame != self.last_frame + 1:
            raise AnalysisError(f"internal: residence frames out of order ({frame} after {self.last_frame})")
        self.last_frame = frame
        now = contacts[self.key].code
        self.bound_per_frame[frame] = len(now)
        alive = np.isin(self.codes, now, assume_unique=True)
        ended = frame - self.starts[~alive]
        np.add.at(self.run_hist, ended, 1)
        new = np.setdiff1d(now, self.codes, assume_unique=True)
        codes = np.concatenate([self.codes[alive], new])
        starts = np.concatenate([self.starts[alive], np.full(len(new), frame, dtype=np.int64)])
        order = np.argsort(codes, kind="stable")
        self.codes, self.starts = codes[order], starts[order]

    def result(self, dt_ps: float | None) -> ResidenceResult:
        t_total = self.n_frames
        hist = self.run_hist.copy()
        np.add.at(hist, t_total - self.starts, 1)  # runs still open at the end
        lengths = np.arange(len(hist))
        # numerator(t) = sum_L n_L max(L - t, 0) = S1(t) - t S0(t) over L > t
        s0 = np.cumsum((hist)[::-1])[::-1]  # sum_{L >= t} n_L
        s1 = np.cumsum((hist * lengths)[::-1])[::-1]
        lags = np.arange(t_total)
        num = s1[lags + 1] - lags * s0[lags + 1]  # sum_{L > t} n_L (L - t)
        den = np.cumsum(self.bound_per_frame)[::-1][: t_total]  # sum_{s <= T-1-t} h(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        dt = float(dt_ps) if dt_ps else 1.0
        times = lags * dt
        finite = np.isfinite(c)
        zero = np.nonzero(finite & (c <= 0))[0]
        decayed = bool(len(zero))
        if not finite.any():
            tau = float("nan")
        else:
            end = int(zero[0]) if decayed else int(np.nonzero(finite)[0][-1])
            # trapezoid rule on the uniform lag grid
            tau = dt * float(np.sum(c[: end + 1]) - 0.5 * (c[0] + c[end])) if end > 0 else float("nan")
        return ResidenceResult(self.key, lags, times, c, tau, decayed, int(hist[1:].sum()))


# --------------------------------------------------------------------------- public entry points

#: Coordinating atoms of the anions (template atom names/elements of ``forcefields/ions.xml``).
ANION_COORDINATING_ELEMENT = {"PF6": "F", "TFS": "O", "FSI": "O"}


def default_electrolyte_groups(topology) -> tuple[dict[str, str], dict[str, str], str | None]:
    """Default centre, shells and anion label for a carbonate electrolyte, from the species table.

    Centre ``Li = resname LI``; one shell per carbonate solvent present (label =
    species name, the carbonyl O, atom ``O1`` of the templates in
    ``forcefields/carbonates.xml``) and per anion present (its coordinating
    atoms: F of PF6, O of TFSI/FSI). The anion label is returned when exactly
    one anion species is present.

    Returns
    -------
    center : dict of str to str
    shells : dict of str to str
    anion : str or None
    """
    from aseimd.species import all_species

    present = {r.name for r in topology.residues}
    center = {"Li": "resname LI"} if "LI" in present else {}
    shells, anions = {}, []
    for sp in all_species():
        if sp.residue not in present:
            continue
        if sp.kind == "solvent" and sp.forcefield_file == "carbonates.xml":
            shells[sp.name] = f"resname {sp.residue} and name O1"
        elif sp.kind == "anion" and sp.residue in ANION_COORDINATING_ELEMENT:
            shells[sp.name] = f"resname {sp.residue} and element {ANION_COORDINATING_ELEMENT[sp.residue]}"
            anions.append(sp.name)
    return center, shells, (anions[0] if len(anions) == 1 else None)



def coordination(
    traj: Trajectory,
    center: dict[str, str],
    shells: dict[str, str],
    *,
    cutoffs_nm: dict[str, float] | None = None,
    r_max_nm: float | None = None,
    bin_nm: float = 0.005,
    anion: str | None = None,
    residence: bool = False,
    exclude_intramolecular: bool = False,
    n_blocks: int = 5,
    rdf: bool = True,
) -> CoordinationResult:
    """RDFs, coordination numbers and shell compositions of shell groups around one centre group.

    Parameters
    ----------
    traj : Trajectory
        Opened trajectory.
    center : dict of str to str
        Exactly one ``{label: mdtraj selection}`` for the centre atoms (e.g. ``{"Li": "resname LI"}``).
    shells : dict of str to str
        ``{label: selection}`` of the shell groups (e.g. ``{"EC": "resname EC and name O1"}``).
    cutoffs_nm : dict of str to float, optional
        Given cut-offs per shell label in nm; the others come from the RDF's first minimum.
    r_max_nm, bin_nm, residence, exclude_intramolecular, n_blocks, rdf
        See :func:`run_pairs`.
    anion : str, optional
        Shell label of the anion for SSIP/CIP/AGG speciation.

    Returns
    -------
    CoordinationResult
        ``pairs`` keyed by shell label; ``compositions`` over all shells; ``speciation`` if ``anion``.
    """
    if len(center) != 1:
        raise AnalysisError(f"exactly one centre group is needed, got {len(center)}: {list(center)}")
    if not shells:
        raise AnalysisError("at least one shell group is needed (--shell LABEL=SELECTION)")
    (c_label, c_sel), = center.items()
    if c_label in shells:
        raise AnalysisError(f"label {c_label!r} is used for the centre and a shell; labels must be unique")
    cutoffs_nm = dict(cutoffs_nm or {})
    unknown = sorted(set(cutoffs_nm) - set(shells))
    if unknown:
        raise AnalysisError(f"cut-off given for unknown shell {unknown[0]!r}; shells: {', '.join(shells)}")
    if anion is not None and anion not in shells:
        raise AnalysisError(f"--anion {anion!r} is not a shell label; shells: {', '.join(shells)}")
    groups = {c_label: make_group(traj, c_label, c_sel)}
    for label, sel in shells.items():
        groups[label] = make_group(traj, label, sel)
    pairs = [PairSpec(label, c_label, label, cutoffs_nm.get(label)) for label in shells]
    return run_pairs(
        traj, groups, pairs, r_max_nm=r_max_nm, bin_nm=bin_nm, composition_center=c_label,
        anion_pair=anion, residence=residence, exclude_intramolecular=exclude_intramolecular,
        n_blocks=n_blocks, rdf=rdf,
    )


def coordination_streamed(
    top,
    traj,
    center: dict[str, str],
    shells: dict[str, str],
    cutoffs_nm: dict[str, float] | None = None,
    *,
    dt_ps: float | None = None,
    chunk_frames: int = 500,
    start: int = 0,
    stop: int | None = None,
    stride: int = 1,
    **options,
) -> CoordinationResult:
    """Coordination of a large trajectory read in chunks of ``chunk_frames`` (for benchmarks and scripts).

    Only the selected atoms are read; with every cut-off given the trajectory is
    read once, otherwise twice (RDF first, then contacts). Memory is bounded by
    ``chunk_frames`` x (selected atoms) plus the contacts of one frame. With
    every cut-off given, ``rdf=False`` skips the g(r) histograms and searches
    pairs only within the cut-offs (the fastest way to get coordination numbers,
    compositions, speciation and residence times).

    Parameters
    ----------
    top, traj : str or path
        Topology and trajectory files.
    center, shells, cutoffs_nm
        As in :func:`coordination`.
    dt_ps : float, optional
        Frame spacing in ps if the file does not carry it.
    chunk_frames : int
        Frames per chunk.
    start, stop, stride : int
        Frame range.
    **options
        Further keyword arguments of :func:`coordination`.
    """
    t = Trajectory(top, traj, dt_ps=dt_ps, start=start, stop=stop, stride=stride, chunk_frames=chunk_frames)
    return coordination(t, center, shells, cutoffs_nm=cutoffs_nm, **options)
