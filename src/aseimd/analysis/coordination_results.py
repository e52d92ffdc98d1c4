"""Results of a coordination analysis: pair specs, per-pair CN/RDF results, residence, the whole result.

Definitions of every number are in :mod:`aseimd.analysis.coordination`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aseimd.analysis.groups import Group
from aseimd.analysis.rdf import RDF, FirstMinimum

#: Top-level keys of the coordination JSON besides the shell labels.
RESERVED_JSON_KEYS = ("mode", "groups", "rdf", "n_blocks", "compositions", "speciation", "residence",
                      "solvent_cn", "warnings", "method", "meta", "window")


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
    #: How the first minimum of g(r) was sought (and found or not); None without an RDF.
    first_minimum: FirstMinimum | None = None

    @property
    def cutoff_note(self) -> str:
        """The cut-off's source for the screen, e.g. ``auto, dip 6.1 sigma`` or ``given``."""
        if self.cutoff_source == "auto" and self.first_minimum is not None and self.first_minimum.found:
            return f"auto, {self.first_minimum.describe()}"
        return str(self.cutoff_source)

    def to_dict(self) -> dict:
        """JSON-ready summary (without the g(r) table)."""
        out = {
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
        if self.first_minimum is not None:
            out["first_minimum"] = self.first_minimum.to_dict()
        return out


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
    #: The z window of the centre atoms (``z_range_nm``, ``layer``, ``n_center_frames``,
    #: ``mean_centers_in_window``, ...), or None for the whole cell.
    window: dict | None = None

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
        if self.window is not None:
            out["window"] = self.window
        out["warnings"] = list(self.warnings)
        return out

    def tables(self) -> dict[str, tuple[list[str], list[np.ndarray]]]:
        """``{"rdf": ..., "residence": ...}`` (the latter when computed): CSV headers and columns."""
        out = {"rdf": self.rdf_table()} if all(p.rdf is not None for p in self.pairs.values()) else {}
        if self.residence:
            out["residence"] = self.residence_table()
        return out

    def to_json(self) -> dict:
        """The same as :meth:`to_dict` (the name every analysis result shares)."""
        return self.to_dict()


def coordination_document(result, traj, mode: str) -> dict:
    """The JSON document of ``aseimd analyze coordination`` (see docs/analysis_structure.md)."""
    from aseimd import __version__

    out = {"mode": mode}
    out.update(result.to_dict())
    out["method"] = {
        "rdf": "minimum-image pair distances; g(r) normalised per frame with the ideal-gas pair density "
               "N_pairs/V(frame) (self pairs excluded); n(r) counted directly",
        "cutoff": "first minimum after the first peak of g(r) smoothed with a 0.01 nm Gaussian whose depth "
                  "below the peak and rise after it are both >= 4 combined sigma (noise: the larger of Poisson "
                  "counting and the scatter of 10 frame blocks) and >= 0.02 in g; per pair in first_minimum "
                  "(depth_sigma, rise_sigma), unless given",
        "cn": "cn = mean shell atoms within the cut-off per centre atom; cn_molecules = mean distinct "
              "shell residues",
        "stderr": f"block averaging over {result.n_blocks} contiguous time blocks: "
                  "std(block means, ddof=1)/sqrt(n_blocks)",
        "residence": "continuous residence TCF of (centre atom, shell residue) pairs over all time origins; "
                     "tau = trapezoid integral to the first zero",
    }
    out["meta"] = {
        "top": str(traj.top_path),
        "traj": str(traj.traj_path),
        "frames": {"start": traj.start, "stop": traj.stop, "stride": traj.stride, "n_frames": traj.n_frames},
        **_time_step(traj),
        "aseimd_version": __version__,
        "trajectory_warnings": list(getattr(traj, "warnings", [])),
    }
    return out


def _time_step(traj) -> dict:
    """dt_ps and its source, or nulls when the trajectory has none (g(r) and CNs need no time axis)."""
    from aseimd.errors import AnalysisError

    try:
        return {"dt_ps": traj.dt_ps, "dt_source": traj.dt_source}
    except AnalysisError:
        return {"dt_ps": None, "dt_source": None}
