"""Number and charge density profiles along one box axis, per group of atoms.

Every frame's atoms are wrapped into the box and binned on their *fractional*
coordinate along the axis, so the bins follow the box when it breathes (NPT):
bin ``k`` of ``n_bins`` always covers fractional coordinates
``[k/n, (k+1)/n)`` and its volume in a frame is ``V(t)/n_bins``. The density of
a bin in a frame is its count (or summed charge) divided by that volume; the
profile is the time average of these per-frame densities. Positions along the
axis are reported in nm as ``(k + 1/2) / n_bins * <h>``, with ``<h>`` the mean
height of the box along the axis (``V / |a x b|`` for z, the box edge for an
orthorhombic box).

Standard errors come from block averaging: the frames are cut into
``n_blocks`` contiguous blocks of (nearly) equal length, each block's mean
profile is computed, and the standard error of a bin is the standard deviation
of its block means (``ddof=1``) divided by ``sqrt(n_blocks)``. This is the
usual estimate for a correlated time series when a block is longer than the
correlation time of the density in that bin (Flyvbjerg & Petersen,
J. Chem. Phys. 91, 461 (1989)); with fewer than two blocks the error is NaN and
a warning says so.

Charges
-------
Per-atom charges are not in a PDB. Two sources are offered:

* ``formal`` (default): each residue's formal charge from the species table
  (:mod:`aseimd.species`, matched on the residue name) spread evenly over the
  residue's atoms, ``q_atom = Q_residue / n_atoms_in_residue`` (over the atoms
  of the charged group only when the species names one in ``ionic_atoms``, as
  a Li-Nafion repeat unit does for its sulfonate). Spreading over
  the atoms (rather than placing ``Q`` at the residue's centre of mass) needs no
  molecule unwrapping, works for groups that select part of a residue or a
  residue of a polymer chain, and keeps the group's total charge exact when the
  group holds whole residues. It smears an ion's charge over its own extent
  (about 0.3 nm for PF6-), which is below the usual bin width's resolution of
  interest but is not the force field's charge distribution.
* per-atom charges from a serialized ``openmm.System`` (the ``system.xml`` that
  ``aseimd build`` writes), read from its ``NonbondedForce``: the charges the
  simulation used, including any ion charge scaling.

Residues not in the species table have no formal charge: the charge profile of
a group that contains them is not computed (NaN), and a warning names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aseimd.analysis.blocks import block_mean_stderr
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

#: Allowed values of ``axis``.
AXES = ("x", "y", "z")

#: Blocks used for the standard errors unless told otherwise.
DEFAULT_N_BLOCKS = 10

#: Atom-frames read per chunk (bounds the float64 work arrays to ~16 MB each).
CHUNK_ATOM_FRAMES = 2_000_000


@dataclass(frozen=True)
class GroupProfile:
    """Density profiles of one group of atoms.

    Attributes
    ----------
    label, selection : str
        The group's label and its mdtraj selection.
    n_atoms : int
        Atoms in the group.
    number_density_per_nm3, number_density_stderr_per_nm3 : numpy.ndarray, shape=(n_bins,)
        Time-averaged number density and its block-average standard error, in nm^-3.
    charge_density_e_per_nm3, charge_density_stderr_e_per_nm3 : numpy.ndarray, shape=(n_bins,)
        Time-averaged charge density and its standard error, in e/nm^3 (NaN where
        the group has atoms without a known charge).
    total_charge_e : float
        Sum of the group's atomic charges in e (NaN if any is unknown).
    integral_n_atoms : float
        ``sum_k rho_k * <V>/n_bins``: the number density integrated over the mean
        box; equals ``n_atoms`` for a fixed box, and to second order in the
        volume fluctuation otherwise.
    integral_charge_e : float
        The charge density integrated the same way; equals ``total_charge_e``.
    """

    label: str
    selection: str
    n_atoms: int
    number_density_per_nm3: np.ndarray
    number_density_stderr_per_nm3: np.ndarray
    charge_density_e_per_nm3: np.ndarray
    charge_density_stderr_e_per_nm3: np.ndarray
    total_charge_e: float
    integral_n_atoms: float
    integral_charge_e: float


@dataclass(frozen=True)
class Profiles:
    """Density profiles of several groups along one axis.

    Attributes
    ----------
    axis : str
        ``"x"``, ``"y"`` or ``"z"``.
    n_bins : int
        Number of bins over the box height.
    bin_centers_nm : numpy.ndarray, shape=(n_bins,)
        Bin centres along the axis in nm, on the mean box.
    bin_width_nm : float
        Mean bin width in nm (``<h>/n_bins``).
    box_mean_nm : numpy.ndarray, shape=(3, 3)
        Mean box vectors (rows) in nm.
    height_mean_nm, volume_mean_nm3 : float
        Mean box height along the axis (nm) and mean volume (nm^3).
    height_min_nm, height_max_nm : float
        Smallest and largest box height seen, in nm.
    n_frames, n_blocks : int
        Frames used and blocks of the standard errors.
    charge_source : str
        Where the charges came from (``"formal"`` or the system XML path).
    groups : dict[str, GroupProfile]
        Per group label, in the order given.
    warnings : list[str]
        Anything a reader of the numbers must know.
    """

    axis: str
    n_bins: int
    bin_centers_nm: np.ndarray
    bin_width_nm: float
    box_mean_nm: np.ndarray
    height_mean_nm: float
    volume_mean_nm3: float
    height_min_nm: float
    height_max_nm: float
    n_frames: int
    n_blocks: int
    charge_source: str
    groups: dict[str, GroupProfile]
    warnings: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, tuple[list[str], list[np.ndarray]]]:
        """``{"density": (headers, columns)}``: position, then number/charge density and errors per group."""
        headers = [f"{self.axis} (nm)"]
        columns = [self.bin_centers_nm]
        for label, g in self.groups.items():
            headers += [f"{label} number density (nm^-3)", f"{label} number density stderr (nm^-3)",
                        f"{label} charge density (e/nm^3)", f"{label} charge density stderr (e/nm^3)"]
            columns += [g.number_density_per_nm3, g.number_density_stderr_per_nm3,
                        g.charge_density_e_per_nm3, g.charge_density_stderr_e_per_nm3]
        return {"density": (headers, columns)}

    def to_json(self) -> dict:
        """JSON-ready result (units in every key): axis and bins, the mean box, and per group the number and
        charge densities with their block standard errors; ``method`` says how, ``warnings`` what to know."""
        groups = {}
        for label, g in self.groups.items():
            groups[label] = {
                "selection": g.selection,
                "n_atoms": g.n_atoms,
                "number_density_per_nm3": g.number_density_per_nm3,
                "number_density_stderr_per_nm3": g.number_density_stderr_per_nm3,
                "charge_density_e_per_nm3": g.charge_density_e_per_nm3,
                "charge_density_stderr_e_per_nm3": g.charge_density_stderr_e_per_nm3,
                "total_charge_e": g.total_charge_e,
                "integral_n_atoms": g.integral_n_atoms,
                "integral_charge_e": g.integral_charge_e,
            }
        return {
            "axis": self.axis,
            "n_bins": self.n_bins,
            "bin_width_nm": self.bin_width_nm,
            "bin_centers_nm": self.bin_centers_nm,
            "box_mean_nm": self.box_mean_nm,
            "height_mean_nm": self.height_mean_nm,
            "height_range_nm": [self.height_min_nm, self.height_max_nm],
            "volume_mean_nm3": self.volume_mean_nm3,
            "charge_source": self.charge_source,
            "groups": groups,
            "method": {
                "binning": "atoms wrapped into the box per frame; bins on the fractional coordinate along the axis "
                           "(bin volume V(t)/n_bins); density = time average of per-frame densities",
                "stderr": f"block averaging over {self.n_blocks} contiguous blocks: std(block means, ddof=1)/sqrt(n)",
                "charges": "residue formal charge spread evenly over the residue's atoms"
                           if self.charge_source == "formal"
                           else "per-atom charges from the NonbondedForce of the system XML",
            },
            "warnings": list(self.warnings),
        }


def formal_charges(topology) -> tuple[np.ndarray, list[str]]:
    """Per-atom charges from residue formal charges, spread evenly over each residue's atoms.

    Parameters
    ----------
    topology : mdtraj.Topology

    Returns
    -------
    charges_e : numpy.ndarray, shape=(n_atoms,), dtype=float64
        Charge of each atom in e; NaN for atoms of residues not in the species table.
        A residue whose species names ``ionic_atoms`` (the charged group of a polymer
        repeat unit, e.g. a sulfonate) has its formal charge spread over those atoms
        only, the rest of the residue 0.
    unknown : list of str
        Residue names (sorted) that are not in the species table.
    """
    from aseimd.species import all_species

    by_residue = {sp.residue.upper(): sp for sp in all_species()}
    charges = np.full(topology.n_atoms, np.nan)
    unknown: set[str] = set()
    for residue in topology.residues:
        sp = by_residue.get(residue.name.upper())
        atoms = list(residue.atoms)
        if sp is None:
            unknown.add(residue.name)
            continue
        if not atoms:
            continue
        charges[[a.index for a in atoms]] = 0.0
        ionic = set(sp.ionic_atoms)
        carriers = [a.index for a in atoms if a.name in ionic] or [a.index for a in atoms]
        charges[carriers] = sp.formal_charge / len(carriers)
    return charges, sorted(unknown)


def system_xml_charges(path: str | Path, n_atoms: int) -> np.ndarray:
    """Per-atom charges (e) from the ``NonbondedForce`` of a serialized ``openmm.System``.

    Parameters
    ----------
    path : str or path
        ``system.xml`` as written by ``aseimd build`` (``openmm.XmlSerializer``).
    n_atoms : int
        Atoms in the topology; the system must have exactly this many particles.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms,), dtype=float64
    """
    import openmm

    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"system XML {str(path)!r} does not exist")
    try:
        system = openmm.XmlSerializer.deserialize(path.read_text())
    except Exception as exc:  # OpenMM raises a bare Exception on bad XML
        raise AnalysisError(f"cannot read {str(path)!r} as a serialized openmm.System: {exc}") from None
    if not isinstance(system, openmm.System):
        raise AnalysisError(f"{str(path)!r} holds a {type(system).__name__}, not an openmm.System")
    if system.getNumParticles() != n_atoms:
        raise AnalysisError(
            f"system XML {str(path)!r} has {system.getNumParticles()} particles but the topology has "
            f"{n_atoms} atoms"
        )
    forces = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    if len(forces) != 1:
        raise AnalysisError(
            f"system XML {str(path)!r} has {len(forces)} NonbondedForce objects; need exactly 1 to read charges"
        )
    nb = forces[0]
    return np.array(
        [nb.getParticleParameters(i)[0].value_in_unit(openmm.unit.elementary_charge) for i in range(n_atoms)]
    )


def profile_stream(
    traj: Trajectory,
    groups: dict[str, str],
    *,
    charges_e: np.ndarray | None = None,
    charge_source: str = "formal",
    axis: str = "z",
    bin_nm: float | None = None,
    n_bins: int | None = None,
    n_blocks: int = DEFAULT_N_BLOCKS,
) -> ProfileStream:
    """The checked stream of :func:`density_profiles` (nothing is read yet).

    Parameters
    ----------
    traj : Trajectory
        The opened trajectory; it must carry a unit cell.
    groups : dict[str, str]
        ``{label: mdtraj selection}``.
    charges_e : numpy.ndarray, shape=(n_atoms_total,), optional
        Per-atom charges in e for the whole topology (NaN = unknown). Default:
        :func:`formal_charges` of the topology.
    charge_source : str
        Description of ``charges_e`` recorded in the result.
    axis : {"x", "y", "z"}
        Axis of the profile: the slabs are parallel to the face spanned by the other two
        box vectors (for an orthorhombic box, simply the Cartesian axis).
    bin_nm : float, optional
        Bin width in nm; the number of bins is ``round(h0 / bin_nm)`` with ``h0`` the
        first frame's box height. Default 0.05 nm if neither this nor ``n_bins`` is given.
    n_bins : int, optional
        Number of bins over the box height (instead of ``bin_nm``).
    n_blocks : int
        Blocks for the standard errors (reduced to the number of frames if larger).

    Returns
    -------
    ProfileStream
        Its ``result()`` after the pass is the :class:`Profiles`.
    """
    if axis not in AXES:
        raise AnalysisError(f"axis {axis!r} is not one of {', '.join(AXES)}")
    if bin_nm is not None and n_bins is not None:
        raise AnalysisError("give either a bin width (--bin-nm) or a number of bins (--n-bins), not both")
    if bin_nm is not None and not (np.isfinite(bin_nm) and bin_nm > 0):
        raise AnalysisError(f"bin width must be > 0 nm, got {bin_nm}")
    if n_bins is not None and n_bins < 1:
        raise AnalysisError(f"number of bins must be >= 1, got {n_bins}")
    if n_blocks < 1:
        raise AnalysisError(f"number of blocks must be >= 1, got {n_blocks}")
    if not groups:
        raise AnalysisError("no groups given; pass at least one --group LABEL=SELECTION")
    if not traj.has_box:
        raise AnalysisError(
            f"trajectory {str(traj.traj_path)!r} carries no unit cell; a density profile needs the box"
        )
    warnings: list[str] = []
    if charges_e is None:
        charges_e, _ = formal_charges(traj.topology)  # unknown residues: NaN charges, warned per group below
    charges_e = np.asarray(charges_e, dtype=float)
    if charges_e.shape != (traj.topology.n_atoms,):
        raise AnalysisError(f"charges must have shape ({traj.topology.n_atoms},), got {charges_e.shape}")

    ax = AXES.index(axis)
    indices = {label: traj.select(sel, label) for label, sel in groups.items()}
    union = np.unique(np.concatenate(list(indices.values())))
    columns = {label: np.searchsorted(union, idx) for label, idx in indices.items()}
    group_q = {label: charges_e[idx] for label, idx in indices.items()}
    for label, q in group_q.items():
        if np.isnan(q).any():
            bad = sorted({traj.topology.atom(int(i)).residue.name for i in indices[label][np.isnan(q)]})
            warnings.append(
                f"group {label!r}: no charge known for residue(s) {', '.join(bad)} "
                "(not in the species table); its charge density is not computed — pass a system XML"
            )

    return ProfileStream(traj, groups, axis=axis, ax=ax, bin_nm=bin_nm, n_bins=n_bins, n_blocks=n_blocks,
                         charge_source=charge_source, indices=indices, union=union, columns=columns,
                         group_q=group_q, warnings=warnings)


def density_profiles(traj: Trajectory, groups: dict[str, str], **options) -> Profiles:
    """Time-averaged number and charge density along ``axis`` for each group.

    One streamed pass over the groups' atoms; the same computation as
    :class:`ProfileAnalysis` in :func:`aseimd.analysis.engine.run_analyses`.
    Parameters as in :func:`profile_stream`.

    Returns
    -------
    Profiles
    """
    from aseimd.analysis.engine import stream

    s = profile_stream(traj, groups, **options)
    stream(traj, [s])
    return s.result()


class ProfileStream:
    """Binning of wrapped positions chunk by chunk (the stream contract of :func:`aseimd.analysis.engine.stream`).

    Holds only the (number/charge, block, bin) sums per group; ``feed`` bins a
    chunk in slices of at most :data:`CHUNK_ATOM_FRAMES` atom-frames;
    ``end_pass`` returns ``None`` (one pass); :meth:`result` gives the
    :class:`Profiles`. Built by :func:`profile_stream`.
    """

    def __init__(self, traj, groups, *, axis, ax, bin_nm, n_bins, n_blocks, charge_source, indices, union, columns,
                 group_q, warnings) -> None:
        self.traj, self.groups, self.axis, self.ax = traj, groups, axis, ax
        self.bin_nm, self.nbins, self.n_blocks, self.charge_source = bin_nm, n_bins, n_blocks, charge_source
        self.indices, self.atoms, self.columns, self.group_q, self.warnings = indices, union, columns, group_q, warnings
        n_frames = traj.n_frames
        self.n_frames = n_frames
        self.n_blocks_used = n_blocks_used = min(n_blocks, n_frames)
        self.block_of_frame = (np.arange(n_frames) * n_blocks_used) // n_frames
        self.frames_per_block = np.bincount(self.block_of_frame, minlength=n_blocks_used).astype(float)
        self.acc: dict[str, np.ndarray] = {}  # per label: (2 = number/charge, n_blocks, n_bins) block sums
        self.box_sum = np.zeros((3, 3))
        self.vol_sum = 0.0
        self.h_sum, self.h_min, self.h_max = 0.0, np.inf, -np.inf
        self._result = None

    def feed(self, chunk) -> None:
        """Bin every frame of ``chunk`` (positions of :attr:`atoms`)."""
        step = max(1, CHUNK_ATOM_FRAMES // self.atoms.size)
        for lo in range(0, chunk.xyz_nm.shape[0], step):
            box = None if chunk.box_nm is None else chunk.box_nm[lo:lo + step]
            self._bin(chunk.start + lo, chunk.xyz_nm[lo:lo + step], box)

    def end_pass(self):
        """One pass is enough: ``None``."""
        return None

    def _bin(self, start, xyz_nm, box) -> None:
        traj, ax, n_blocks_used = self.traj, self.ax, self.n_blocks_used
        nbins, acc, columns, group_q, indices = self.nbins, self.acc, self.columns, self.group_q, self.indices
        bin_nm, block_of_frame = self.bin_nm, self.block_of_frame
        if box is None:
            raise AnalysisError(f"trajectory {str(traj.traj_path)!r} lost its unit cell part-way")
        volume = np.abs(np.linalg.det(box))  # (n,)
        if np.any(~np.isfinite(volume)) or np.any(volume <= 0):
            raise AnalysisError(f"trajectory {str(traj.traj_path)!r} has frames with a degenerate unit cell")
        height = volume / _cross_area(box, ax)
        if nbins is None:
            nbins = max(1, int(round(height[0] / (0.05 if bin_nm is None else bin_nm))))
        if not acc:
            acc = {label: np.zeros((2, n_blocks_used, nbins)) for label in indices}
        # fractional coordinate along the axis: s = r . inv(box)[:, ax], wrapped into [0, 1)
        inv_col = np.linalg.inv(box)[:, :, ax]  # (n, 3)
        s = np.matmul(xyz_nm.astype(np.float64), inv_col[:, :, None])[..., 0]
        s -= np.floor(s)
        bins = np.minimum((s * nbins).astype(np.int64), nbins - 1)  # s == 1.0 after rounding -> last bin
        nf = bins.shape[0]
        inv_slab = nbins / volume  # 1 / (bin volume) per frame, nm^-3
        blocks = block_of_frame[start : start + nf]
        size = n_blocks_used * nbins
        for label, cols in columns.items():
            # one weighted histogram over (block, bin): each atom adds 1/V_bin(t) (and q/V_bin(t))
            flat = (blocks[:, None] * nbins + bins[:, cols]).ravel()
            w = np.broadcast_to(inv_slab[:, None], (nf, cols.size)).ravel()
            wq = (inv_slab[:, None] * np.nan_to_num(group_q[label])[None, :]).ravel()
            acc[label][0] += np.bincount(flat, weights=w, minlength=size).reshape(n_blocks_used, nbins)
            acc[label][1] += np.bincount(flat, weights=wq, minlength=size).reshape(n_blocks_used, nbins)
        self.nbins, self.acc = nbins, acc
        self.box_sum += box.sum(axis=0)
        self.vol_sum += volume.sum()
        self.h_sum += height.sum()
        self.h_min, self.h_max = min(self.h_min, height.min()), max(self.h_max, height.max())

    def result(self) -> Profiles:
        """The profiles after the pass."""
        if self._result is not None:
            return self._result
        axis, bin_nm, nbins, acc, group_q, indices, groups = (self.axis, self.bin_nm, self.nbins, self.acc,
                                                              self.group_q, self.indices, self.groups)
        n_frames, n_blocks, n_blocks_used, frames_per_block = (self.n_frames, self.n_blocks, self.n_blocks_used,
                                                               self.frames_per_block)
        warnings, charge_source = self.warnings, self.charge_source
        h_sum, h_min, h_max, vol_sum, box_sum = self.h_sum, self.h_min, self.h_max, self.vol_sum, self.box_sum
        h_mean = h_sum / n_frames
        v_mean = vol_sum / n_frames
        if n_blocks_used < 2:
            warnings.append(f"only {n_frames} frame(s): no standard errors (need >= 2 blocks)" if n_blocks >= 2 else
                            f"--blocks {n_blocks}: no standard errors (need >= 2 blocks)")
        elif n_blocks_used < n_blocks:
            warnings.append(f"standard errors from {n_blocks_used} blocks of one frame each (fewer frames than blocks)")
        if h_max - h_min > 1e-6 * h_mean:
            warnings.append(
                f"box height along {axis} fluctuates between {h_min:.4f} and {h_max:.4f} nm; bins follow the box "
                "(fractional coordinates) and positions are given on the mean box"
            )
        if bin_nm is not None and abs(h_mean / nbins - bin_nm) > 0.01 * bin_nm:
            warnings.append(f"bin width is {h_mean / nbins:.4f} nm (box height / {nbins} bins), not {bin_nm} nm")

        out: dict[str, GroupProfile] = {}
        for label, (num, chg) in acc.items():
            num_mean, num_se = block_mean_stderr(num, frames_per_block, n_frames)
            chg_mean, chg_se = block_mean_stderr(chg, frames_per_block, n_frames)
            q = group_q[label]
            total_q = float(q.sum())  # NaN if any unknown
            if np.isnan(total_q):
                chg_mean = np.full(nbins, np.nan)
                chg_se = np.full(nbins, np.nan)
            out[label] = GroupProfile(
                label=label,
                selection=groups[label],
                n_atoms=int(indices[label].size),
                number_density_per_nm3=num_mean,
                number_density_stderr_per_nm3=num_se,
                charge_density_e_per_nm3=chg_mean,
                charge_density_stderr_e_per_nm3=chg_se,
                total_charge_e=total_q,
                integral_n_atoms=float(num_mean.sum() * v_mean / nbins),
                integral_charge_e=float(chg_mean.sum() * v_mean / nbins),
            )
            rel = abs(out[label].integral_n_atoms - out[label].n_atoms) / out[label].n_atoms
            if rel > 1e-3:
                warnings.append(
                    f"group {label!r}: integrated number density {out[label].integral_n_atoms:.3f} differs from "
                    f"{out[label].n_atoms} atoms by {100 * rel:.2f}% (volume fluctuations)"
                )
        self._result = Profiles(
            axis=axis,
            n_bins=nbins,
            bin_centers_nm=(np.arange(nbins) + 0.5) / nbins * h_mean,
            bin_width_nm=h_mean / nbins,
            box_mean_nm=box_sum / n_frames,
            height_mean_nm=h_mean,
            volume_mean_nm3=v_mean,
            height_min_nm=float(h_min),
            height_max_nm=float(h_max),
            n_frames=n_frames,
            n_blocks=n_blocks_used,
            charge_source=charge_source,
            groups=out,
            warnings=warnings,
        )


        return self._result


def _cross_area(box: np.ndarray, ax: int) -> np.ndarray:
    """Area (nm^2) of the face spanned by the two box vectors other than ``ax``, per frame."""
    i, j = [k for k in range(3) if k != ax]
    return np.linalg.norm(np.cross(box[:, i], box[:, j]), axis=-1)


def _time_step(traj) -> tuple[float | None, str]:
    """The frame spacing for the meta block; a density profile needs none, so a file without one is fine."""
    from aseimd.errors import AnalysisError

    try:
        return traj.dt_ps, traj.dt_source
    except AnalysisError:
        return None, "unknown (not needed for a density profile)"


def profiles_document(result, traj) -> dict:
    """The JSON document of ``aseimd analyze profile`` (see docs/analysis_profile.md): the result's
    :meth:`Profiles.to_json` plus a ``meta`` block saying what was read."""
    from aseimd import __version__

    dt_ps, dt_source = _time_step(traj)
    out = result.to_json()
    out["meta"] = {
        "top": str(traj.top_path),
        "traj": str(traj.traj_path),
        "frames": {"start": traj.start, "stop": traj.stop, "stride": traj.stride, "n_frames": traj.n_frames},
        "dt_ps": dt_ps,
        "dt_source": dt_source,
        "aseimd_version": __version__,
        "trajectory_warnings": list(getattr(traj, "warnings", [])),
    }
    return out


class ProfileAnalysis:
    """Number and charge density profiles (:func:`density_profiles`) as an analysis object.

    ``prepare`` checks the options and returns the stream (:class:`ProfileStream`,
    binning wrapped positions chunk by chunk, no unwrapping) that the engine feeds
    from its shared pass; keyword arguments as in :func:`density_profiles`; the
    result is :class:`Profiles` (``tables()``, ``to_json()``; ``profiles_document`` adds ``meta``).
    """

    name = "profile"

    def __init__(self, groups: dict[str, str], **options) -> None:
        self.groups, self.options = dict(groups), options
        self._stream = None

    def prepare(self, traj) -> ProfileStream:
        """Check the options against ``traj``; the stream the engine feeds."""
        self._stream = profile_stream(traj, self.groups, **self.options)
        return self._stream

    def conclude(self, pos, traj) -> Profiles:
        """The profiles of the fed stream."""
        return self._stream.result()
