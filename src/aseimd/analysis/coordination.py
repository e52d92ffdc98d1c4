"""Coordination: RDFs, coordination numbers, shell compositions, ion-pair speciation, residence times.

One streamed pass (two when a cut-off has to be found from the RDF first) over
the frames, fed chunk by chunk (:class:`PairsStream`; alone, or with every other
analysis from the one shared read of :func:`aseimd.analysis.engine.run_analyses`),
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
* Centres in a z window (``z_range_nm=(lo, hi)``, optionally named by
  ``window_label``, e.g. a layer of an interface cell): in each frame only the
  centre atoms whose z, wrapped into the box (:class:`~aseimd.analysis.contacts.ZWindow`),
  lies in [lo, hi) count; their neighbours come from the whole cell. Every
  mean above is then over the (centre atom, frame) pairs in the window
  (``cn`` = contacts of in-window centres / number of such pairs); g(r) is
  normalised with the in-window pair count of each frame
  (:mod:`aseimd.analysis.rdf`); ``shell_bound_fraction`` is the fraction of
  shell residues bound to an in-window centre; speciation classifies the
  in-window cations (an anion shared with a cation outside the window still
  makes it AGG); ``free_anion_fraction`` stays a whole-cell number. Residence
  times are refused with a window (a centre leaving the window would cut its
  contacts short and bias tau).
* Standard errors: the frames are cut into ``n_blocks`` consecutive time
  blocks (default 5); stderr = standard deviation of the block means / sqrt(n_blocks)
  (:func:`aseimd.analysis.blocks.ratio_mean_stderr`).

Where things are: this module holds the entry points (:func:`coordination`,
:func:`coordination_streamed`, :func:`run_pairs`, groups, defaults); the
sweep over frames is :mod:`~aseimd.analysis.contacts`, the consumers are
:mod:`~aseimd.analysis.coordination_numbers`, :mod:`~aseimd.analysis.shells`,
:mod:`~aseimd.analysis.speciation` and :mod:`~aseimd.analysis.residence`, the
result objects :mod:`~aseimd.analysis.coordination_results`.
"""

from __future__ import annotations

import numpy as np

from aseimd.analysis.contacts import ContactEngine, ZWindow, first_box
from aseimd.analysis.coordination_numbers import CNCounter
from aseimd.analysis.coordination_results import (
    RESERVED_JSON_KEYS,
    CoordinationResult,
    PairResult,
    PairSpec,
    ResidenceResult,
)
from aseimd.analysis.groups import Group, group_from_indices
from aseimd.analysis.neighbors import half_min_width
from aseimd.analysis.pbc import half_min_widths
from aseimd.analysis.rdf import first_minimum_of
from aseimd.analysis.rdf_minimum import check_rule
from aseimd.analysis.residence import ResidenceTracker
from aseimd.analysis.shells import BoundUnion, ShellCompositions
from aseimd.analysis.speciation import IonPairSpeciation
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

__all__ = ["Group", "PairSpec", "PairResult", "ResidenceResult", "CoordinationResult", "RESERVED_JSON_KEYS",
           "make_group", "group_from_indices", "run_pairs", "PairsStream", "coordination", "coordination_stream",
           "coordination_streamed", "CoordinationAnalysis",
           "default_electrolyte_groups", "ANION_COORDINATING_ELEMENT", "DEFAULT_R_MAX_NM"]

#: Default largest RDF distance in nm (clipped to half the shortest box width when not given).
DEFAULT_R_MAX_NM = 1.0


def make_group(traj: Trajectory, label: str, selection: str) -> Group:
    """Select a labelled group of atoms in ``traj`` (AnalysisError if empty or invalid)."""
    idx = np.sort(traj.select(selection, label))
    return group_from_indices(traj.topology, label, selection, idx)


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
    z_range_nm: tuple[float, float] | None = None,
    window_label: str | None = None,
    cutoff_rule: str = "significance",
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
    cutoff_rule : {"significance", "prominence"}
        How the first minimum of g(r) is accepted (:mod:`aseimd.analysis.rdf_minimum`): a dip
        significant against the noise of the histogram (default), or the fixed prominence
        thresholds of earlier versions.

    Returns
    -------
    CoordinationResult
    """
    from aseimd.analysis.engine import stream

    pairs_stream = PairsStream(
        traj, groups, pairs, r_max_nm=r_max_nm, bin_nm=bin_nm, composition_center=composition_center,
        anion_pair=anion_pair, residence=residence, bound_union=bound_union,
        exclude_intramolecular=exclude_intramolecular, n_blocks=n_blocks, smooth_nm=smooth_nm, rdf=rdf,
        z_range_nm=z_range_nm, window_label=window_label, cutoff_rule=cutoff_rule,
    )
    stream(traj, [pairs_stream])
    return pairs_stream.result()


class PairsStream:
    """The streaming form of :func:`run_pairs` (the contract of :func:`aseimd.analysis.engine.stream`).

    ``atoms`` are the atoms of every group the pairs use; ``feed(chunk)``
    searches the contacts of each frame; ``end_pass()`` returns ``None`` when
    the counts are complete, or ``atoms`` again after a g(r)-only first pass
    when a cut-off is to be found from the RDF (the contacts need it before
    they can be counted); :meth:`result` gives the
    :class:`~aseimd.analysis.coordination_results.CoordinationResult`.
    Every option is checked in the constructor, before anything is read.
    Parameters as in :func:`run_pairs`.
    """

    def __init__(self, traj, groups, pairs, *, r_max_nm=None, bin_nm=0.005, composition_center=None,
                 anion_pair=None, residence=False, bound_union=None, exclude_intramolecular=False, n_blocks=5,
                 smooth_nm=0.01, rdf=True, z_range_nm=None, window_label=None, cutoffs_from=None,
                 cutoff_rule="significance") -> None:
        _check_pairs(groups, pairs)
        check_rule(cutoff_rule)
        self.cutoff_rule = cutoff_rule
        window = None
        if z_range_nm is not None:
            try:
                lo, hi = (float(v) for v in z_range_nm)
            except (TypeError, ValueError):
                raise AnalysisError(f"z_range_nm must be two numbers (nm), got {z_range_nm!r}") from None
            window = ZWindow(lo, hi, window_label)
            if residence:
                raise AnalysisError("residence times in a z window are not supported (a centre leaving the window "
                                    "would cut its contacts short and bias tau); drop --residence or the window")
        if n_blocks < 2:
            raise AnalysisError(f"n_blocks must be >= 2, got {n_blocks}")
        if not traj.has_box:
            raise AnalysisError(
                f"trajectory {str(traj.traj_path)!r} carries no unit cell; RDFs and coordination "
                "numbers need a periodic box"
            )
        warnings: list[str] = []
        box0 = first_box(traj)
        if window is not None:
            window.check_box(box0, "first frame: ")
        # the search radius must fit every frame's box: with the boxes of all frames at hand (a DCD, memory),
        # the smallest one counts (an NPT run's box shrinks and swells); otherwise the first frame's
        boxes = traj.box_series_nm()
        if boxes is not None and len(boxes):
            halves = half_min_widths(boxes)
            k = int(np.argmin(halves))
            half0, where = float(halves[k]), ("" if np.all(halves == halves[0]) else
                                              f" (its smallest box, frame {k} of the frames analysed)")
        else:
            half0, where = half_min_width(box0), ""
        if not half0 > 0:
            raise AnalysisError("the trajectory has a box of zero volume (a degenerate unit cell)")
        if r_max_nm is None:
            r_max_nm = DEFAULT_R_MAX_NM
            if r_max_nm > half0:
                warnings.append(
                    f"r_max clipped from {DEFAULT_R_MAX_NM} nm to half the shortest box width{where}, "
                    f"{half0:.4f} nm"
                )
                r_max_nm = half0
        elif r_max_nm > half0 * (1 + 1e-9):
            raise AnalysisError(
                f"--rmax-nm {r_max_nm} exceeds half the shortest box width{where} ({half0:.4f} nm); "
                f"use a value <= {half0:.4f}"
            )
        for p in pairs:
            if p.cutoff_nm is not None and not 0 < p.cutoff_nm <= r_max_nm:
                raise AnalysisError(
                    f"cut-off {p.cutoff_nm} nm for {p.key!r} must be > 0 and <= r_max ({r_max_nm:.4f} nm)"
                )
        cutoffs = {p.key: p.cutoff_nm for p in pairs}
        need_auto = any(c is None for c in cutoffs.values())
        if not rdf and need_auto:
            missing = [k for k, c in cutoffs.items() if c is None]
            raise AnalysisError(f"without RDFs every cut-off must be given; missing: {', '.join(missing)}")
        if traj.n_frames < n_blocks:
            warnings.append(f"only {traj.n_frames} frames for {n_blocks} blocks: standard errors from "
                            f"{traj.n_frames} one-frame blocks" if traj.n_frames >= 2 else
                            f"only {traj.n_frames} frame for {n_blocks} blocks: no standard errors")
        self.traj, self.groups, self.pairs, self.warnings = traj, groups, pairs, warnings
        self.r_max_nm, self.bin_nm, self.n_blocks, self.smooth_nm, self.rdf = r_max_nm, bin_nm, n_blocks, smooth_nm, rdf
        self.composition_center, self.anion_pair, self.residence = composition_center, anion_pair, residence
        self.bound_union_keys = bound_union
        self.window = window
        self.engine = ContactEngine(traj, groups, pairs, exclude_intramolecular, r_max_nm, bin_nm, window)
        self.atoms = self.engine.union
        self.cutoffs = cutoffs
        self.sources = {p.key: ("given" if p.cutoff_nm is not None else None) for p in pairs}
        self.need_auto = need_auto
        #: A PairsStream fed in the same passes whose g(r)-derived cut-offs this one uses for its
        #: pairs without a given cut-off (e.g. every layer of a cell takes the whole cell's cut-offs).
        self.cutoffs_from = cutoffs_from
        if cutoffs_from is not None:
            missing = [p.key for p in pairs if p.cutoff_nm is None and p.key not in cutoffs_from.cutoffs]
            if missing:
                raise AnalysisError(f"cut-offs taken from another analysis lack pair(s) {', '.join(missing)}")
        self._resolved = False
        #: Functions applied to the result (the solvent-cn mode adds its fractions this way).
        self.finishers: list = []
        if need_auto:
            self.engine.set_pass(histograms=True, cutoffs=None, consumers=[])
            self._phase = "rdf"
        else:
            self._start_counting()

    def _start_counting(self) -> bool:
        """Set up the consumers for the known cut-offs; False when there is nothing left to feed."""
        engine, warnings, pairs, cutoffs, groups = self.engine, self.warnings, self.pairs, self.cutoffs, self.groups
        n_blocks = self.n_blocks
        active = [p.key for p in pairs if cutoffs[p.key] is not None]
        self.counters = {k: CNCounter(k, engine.n_frames, n_blocks, engine.pair_sizes[k]) for k in active}
        consumers: list = list(self.counters.values())
        self.comp = self.spec = None
        if self.composition_center is not None:
            center = self.composition_center
            keys = [p.key for p in pairs if p.center == center and p.key in active]
            skipped = [p.key for p in pairs if p.center == center and p.key not in active]
            if skipped:
                warnings.append(f"shell compositions leave out {skipped} (no cut-off)")
            if keys:
                self.comp = ShellCompositions(center, keys, len(groups[center].indices))
                consumers.append(self.comp)
        if self.anion_pair is not None:
            if self.anion_pair in active:
                n_cations = engine.pair_sizes[self.anion_pair]["n_center"]
                self.spec = IonPairSpeciation(self.anion_pair, engine.n_frames, n_blocks, n_cations)
                consumers.append(self.spec)
            else:
                warnings.append(f"no ion-pair speciation: the anion pair {self.anion_pair!r} has no cut-off")
        self.res_trackers = {k: ResidenceTracker(k, engine.n_frames) for k in active} if self.residence else {}
        consumers += list(self.res_trackers.values())
        self.unions = {}
        for name, keys in (self.bound_union_keys or {}).items():
            keys = [k for k in keys if k in active]
            if keys:
                self.unions[name] = BoundUnion(keys, engine.n_frames, n_blocks, engine.shell_residue_count(keys[0]))
                consumers.append(self.unions[name])
        histograms = self.rdf and not self.need_auto
        self._phase = "contacts" if (active or histograms) else "done"
        engine.set_pass(histograms=histograms, cutoffs={k: cutoffs[k] for k in active}, consumers=consumers)
        return self._phase == "contacts"

    def feed(self, chunk) -> None:
        """Contacts (or, in a g(r)-only first pass, histograms) of every frame of ``chunk``."""
        if self._phase == "done":
            raise AnalysisError("internal: frames fed to a finished coordination stream")
        self.engine.feed(chunk)

    def end_pass(self):
        """``None`` when done; after the g(r)-only pass, the atoms of the contact pass."""
        if self._phase != "rdf":
            self._phase = "done"
            return None
        self._resolve_cutoffs()
        return self.atoms if self._start_counting() else None

    def _resolve_cutoffs(self) -> None:
        """The g(r)-derived cut-offs after the first pass (idempotent: a linked stream may ask first)."""
        if self._resolved:
            return
        self._resolved = True
        if self.cutoffs_from is not None:
            self.cutoffs_from._resolve_cutoffs()
        for p in self.pairs:
            if self.cutoffs[p.key] is None and self.cutoffs_from is not None:
                value = self.cutoffs_from.cutoffs.get(p.key)
                if value is not None:
                    self.cutoffs[p.key], self.sources[p.key] = value, "auto (linked)"
                else:
                    self.warnings.append(f"no cut-off for {p.key!r}: none found in the g(r) it is taken from")
            elif self.cutoffs[p.key] is None:
                g_r = self.engine.rdfs[p.key].result()
                fm = first_minimum_of(g_r, self.smooth_nm, self.cutoff_rule)
                if fm.found:
                    self.cutoffs[p.key], self.sources[p.key] = fm.r_min_nm, "auto"
                else:
                    self.warnings.append(
                        f"no first minimum found in g(r) of {p.key!r} up to {self.r_max_nm:.3f} nm"
                        f"{_best_rejected(fm)}; give --cutoff-nm {p.key}=R (no coordination numbers for it)"
                    )

    def result(self) -> CoordinationResult:
        """The coordination result after the passes."""
        if self._phase != "done":
            raise AnalysisError("internal: coordination result asked for before its passes were fed")
        if getattr(self, "_result", None) is not None:
            return self._result
        traj, engine, warnings, rdf, smooth_nm = self.traj, self.engine, self.warnings, self.rdf, self.smooth_nm
        results: dict[str, PairResult] = {}
        for p in self.pairs:
            g_r = engine.rdfs[p.key].result() if rdf else None
            fm = first_minimum_of(g_r, smooth_nm, self.cutoff_rule) if rdf else None
            sizes = engine.pair_sizes[p.key]
            pr = PairResult(
                key=p.key, center=p.center, shell=p.shell, rdf=g_r,
                r_peak_nm=fm.r_peak_nm if fm else float("nan"), g_peak=fm.g_peak if fm else float("nan"),
                cutoff_nm=self.cutoffs[p.key], cutoff_source=self.sources[p.key], first_minimum=fm,
                n_center_atoms=sizes["n_center"], n_shell_atoms=sizes["n_shell"],
                n_shell_residues=sizes["n_shell_residues"],
            )
            if p.key in self.counters:
                self.counters[p.key].fill(pr)
            results[p.key] = pr
        dt_ps = _dt_or_none(traj)
        out = CoordinationResult(
            pairs=results, groups=self.groups, n_frames=engine.n_frames, dt_ps=dt_ps, r_max_nm=self.r_max_nm,
            bin_nm=self.bin_nm, n_blocks=self.n_blocks, warnings=warnings,
        )
        if self.comp is not None:
            out.compositions = self.comp.result()
        if self.spec is not None:
            out.speciation = self.spec.result()
        for k, tracker in self.res_trackers.items():
            r = tracker.result(traj.dt_ps)
            out.residence[k] = r
            if r.n_runs and not r.decayed:
                warnings.append(f"residence C(t) of {k!r} has not decayed to 0 within the trajectory; "
                                "tau is a lower bound")
        if self.unions:
            out.bound_union = {name: u.result() for name, u in self.unions.items()}
        if self.window is not None:
            out.window = self._window_summary(warnings)
        for finish in self.finishers:
            out = finish(out)
        self._result = out
        return out


    def _window_summary(self, warnings: list[str]) -> dict:
        engine = self.engine
        center = self.composition_center or self.pairs[0].center
        n_cf = engine.center_frames[center]
        n_frames = engine.frames_fed
        out = self.window.to_dict()
        out.update({
            "center": center,
            "n_center_frames": int(n_cf),
            "n_frames": int(n_frames),
            "mean_centers_in_window": n_cf / n_frames if n_frames else float("nan"),
            "n_center_atoms": int(len(self.groups[center].indices)),
            "definition": "a centre atom counts in a frame when its z, wrapped into [0, c_z) of that frame's box "
                          "(a, b in the xy plane), lies in [z_lo, z_hi); means are over the counted "
                          "(centre atom, frame) pairs; neighbours from the whole cell; g(r) normalised with "
                          "the in-window pair count of each frame and the cell-average shell density",
        })
        if n_cf == 0:
            warnings.append(f"no {center} atom in the z window {self.window.z_lo_nm:g}-{self.window.z_hi_nm:g} nm "
                            "in any frame: no coordination numbers")
        return out


def _best_rejected(fm) -> str:
    """`` (the most significant dip, at R nm, is S sigma; Z needed)`` for the warning, or ``""``."""
    if fm.r_peak_nm != fm.r_peak_nm:
        return " (no first peak)"
    if fm.best_r_nm == fm.best_r_nm:
        return (f" significant at {fm.z_sigma:g} sigma (the best dip, at {fm.best_r_nm:.3f} nm, is "
                f"{fm.best_sigma:.1f} sigma: the run is too short or the shell too weak to place it)")
    return " after the first peak"


def _dt_or_none(traj):
    """The frame spacing, or None when the file has none (g(r) and CNs need no time axis)."""
    try:
        return traj.dt_ps
    except AnalysisError:
        return None


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



def coordination(traj: Trajectory, center: dict[str, str], shells: dict[str, str], **options) -> CoordinationResult:
    """RDFs, coordination numbers and shell compositions of shell groups around one centre group.

    One streamed pass over the selected atoms (two when a cut-off comes from
    g(r)); the same computation as :class:`CoordinationAnalysis` in
    :func:`aseimd.analysis.engine.run_analyses`. Parameters as in
    :func:`coordination_stream`.

    Returns
    -------
    CoordinationResult
        ``pairs`` keyed by shell label; ``compositions`` over all shells; ``speciation`` if ``anion``.
    """
    from aseimd.analysis.engine import stream

    pairs_stream = coordination_stream(traj, center, shells, **options)
    stream(traj, [pairs_stream])
    return pairs_stream.result()


def coordination_stream(
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
    z_range_nm: tuple[float, float] | None = None,
    window_label: str | None = None,
    cutoffs_from=None,
    cutoff_rule: str = "significance",
) -> CoordinationResult:
    """The checked stream (:class:`PairsStream`) of :func:`coordination`: nothing is read yet.

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
    r_max_nm, bin_nm, residence, exclude_intramolecular, n_blocks, rdf, z_range_nm, window_label, cutoff_rule
        See :func:`run_pairs` (``z_range_nm``: only centre atoms in this z window count).
    cutoffs_from : PairsStream, optional
        Another stream of the same pass (same shell labels) whose g(r)-derived cut-offs this one
        uses where none is given (``cutoff_source`` ``"auto (linked)"``): e.g. every layer of an
        interface cell with the whole cell's cut-offs, so the layers are counted alike.
    anion : str, optional
        Shell label of the anion for SSIP/CIP/AGG speciation.

    Returns
    -------
    PairsStream
        Its ``result()`` after the pass: ``pairs`` keyed by shell label; ``compositions`` over all
        shells; ``speciation`` if ``anion``.
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
    return PairsStream(
        traj, groups, pairs, r_max_nm=r_max_nm, bin_nm=bin_nm, composition_center=c_label,
        anion_pair=anion, residence=residence, exclude_intramolecular=exclude_intramolecular,
        n_blocks=n_blocks, rdf=rdf, z_range_nm=z_range_nm, window_label=window_label, cutoffs_from=cutoffs_from,
        cutoff_rule=cutoff_rule,
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


class CoordinationAnalysis:
    """Coordination (RDF, CN, shells, speciation, residence) for :func:`aseimd.analysis.engine.run_analyses`.

    Same life cycle as every analysis: ``prepare`` checks the options and
    returns the stream (:class:`PairsStream`) that the engine feeds from its
    shared pass; ``conclude`` returns the
    :class:`~aseimd.analysis.coordination_results.CoordinationResult`
    (``to_json()``, ``tables()``). Keyword arguments as in :func:`coordination`.
    """

    name = "coordination"

    def __init__(self, center: dict[str, str], shells: dict[str, str], *, cutoffs_like=None, **options) -> None:
        """``cutoffs_like``: another CoordinationAnalysis of the same run whose g(r)-derived cut-offs to use
        (prepared first; see ``cutoffs_from`` of :func:`coordination_stream`)."""
        self.center, self.shells, self.options = dict(center), dict(shells), options
        self.cutoffs_like = cutoffs_like
        self._stream = None

    def prepare(self, traj) -> PairsStream:
        """Check the options against ``traj``; the stream the engine feeds."""
        linked = None
        if self.cutoffs_like is not None:
            linked = self.cutoffs_like._stream
            if linked is None:
                raise AnalysisError("internal: the analysis whose cut-offs are shared must be prepared first")
        self._stream = coordination_stream(traj, self.center, self.shells, cutoffs_from=linked, **self.options)
        return self._stream

    def conclude(self, pos, traj) -> CoordinationResult:
        """The result of the fed stream."""
        return self._stream.result()
