"""BCC lithium metal slabs, built with ASE, as :class:`~aseimd.build.cell.Cell` objects.

The lattice constant is :data:`LI_BCC_LATTICE_A` = 3.51 Å: M. R. Nadler and
C. P. Kempter, "Crystallographic Data 186. Lithium", Anal. Chem. 31, 2109
(1959): a = 3.51004 ± 0.00041 Å at 25 °C (read via WebElements' crystallographic
data page for lithium, which quotes this value and reference).

Faces (100), (110) and (111) come from ``ase.build.bcc100/bcc110/bcc111`` with
``orthogonal=True`` (an orthorhombic cell, periodic in x and y; the surface
normal is z). ``layers`` counts atomic layers along z; lateral size is a
whole number of in-plane repeats, so the box is commensurate with the
lattice and the slab is seamless across the x and y boundaries. Each atom is
one residue ``LIM`` (atom ``LI``) of the Li-metal species; the frozen-slab
force-field model is :mod:`aseimd.forcefield.metal`. Å (ASE) are converted to
nm in :mod:`aseimd.build.interop` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aseimd.build.interop import atoms_to_nm
from aseimd.errors import SpecError

#: BCC Li lattice constant at 25 °C, Å (Nadler & Kempter, Anal. Chem. 31, 2109 (1959): 3.51004(41) Å).
LI_BCC_LATTICE_A = 3.51
#: Where :data:`LI_BCC_LATTICE_A` comes from.
LI_BCC_LATTICE_SOURCE = ("M. R. Nadler, C. P. Kempter, Anal. Chem. 31, 2109 (1959): a = 3.51004(41) A "
                         "at 25 C (via WebElements, crystallographic data for lithium)")
#: Supported faces.
FACES = ("100", "110", "111")
#: In-plane repeat that ASE needs for an orthogonal cell, per face (ny must be a multiple of this).
_Y_MULTIPLE = {"100": 1, "110": 2, "111": 2}
#: Fewest atomic layers accepted.
MIN_LAYERS = 3
#: Residue and atom name of a metal atom (the ``LiMetal`` species, forcefields/li_metal.xml).
METAL_RESIDUE, METAL_ATOM = "LIM", "LI"


@dataclass(frozen=True)
class SlabGeometry:
    """Lateral and normal periods of a face.

    Attributes
    ----------
    face : str
    period_nm : tuple of float
        Edge of one ASE ``size=(1, m, ...)`` cell along x and y, nm, where
        ``m`` is the face's y multiple (the smallest orthogonal repeat).
    layer_spacing_nm : float
        Distance between atomic layers along z, nm.
    y_multiple : int
        ``repeats[1]`` must be a multiple of this.
    """

    face: str
    period_nm: tuple[float, float]
    layer_spacing_nm: float
    y_multiple: int


def _check_face(face) -> str:
    face = str(face)
    if face not in FACES:
        raise SpecError(f"unknown Li face {face!r}; allowed: {', '.join(FACES)}")
    return face


def _ase_slab(face: str, size: tuple[int, int, int], a_A: float):
    from ase.build import bcc100, bcc110, bcc111

    builder = {"100": bcc100, "110": bcc110, "111": bcc111}[face]
    return builder("Li", size=size, a=a_A, orthogonal=True)


def slab_geometry(face: str, *, a_A: float = LI_BCC_LATTICE_A) -> SlabGeometry:
    """Lateral period and layer spacing of a BCC face (from ASE's own construction).

    Parameters
    ----------
    face : {"100", "110", "111"}
    a_A : float
        Lattice constant, Å.
    """
    face = _check_face(face)
    m = _Y_MULTIPLE[face]
    atoms = _ase_slab(face, (1, m, 2), a_A)
    cell_nm = atoms_to_nm(np.diag(atoms.cell.array)[:2])
    z = atoms_to_nm(atoms.positions[:, 2])  # two atomic layers
    return SlabGeometry(face, (float(cell_nm[0]), float(cell_nm[1]) / m), float(z.max() - z.min()), m)


def repeats_for(face: str, lateral_nm, *, a_A: float = LI_BCC_LATTICE_A) -> tuple[int, int]:
    """Whole lateral repeats ``(nx, ny)`` closest to a requested lateral size.

    Parameters
    ----------
    face : {"100", "110", "111"}
    lateral_nm : sequence of 2 float
        Requested box edges along x and y, nm.

    Returns
    -------
    (int, int)
        ``nx, ny`` (at least one repeat each; ``ny`` a multiple of the face's y multiple).
    """
    g = slab_geometry(face, a_A=a_A)
    lx, ly = (float(v) for v in lateral_nm)
    nx = max(1, int(round(lx / g.period_nm[0])))
    my = g.y_multiple
    ny = my * max(1, int(round(ly / (g.period_nm[1] * my))))
    return nx, ny


def build_li_slab(face: str = "100", *, layers: int = 6, repeats: tuple[int, int] | None = None,
                  lateral_nm: tuple[float, float] | None = None, a_A: float = LI_BCC_LATTICE_A):
    """Build a BCC Li slab, periodic in x and y, its lowest atomic layer at z = 0.

    Parameters
    ----------
    face : {"100", "110", "111"}
        Surface normal along z.
    layers : int
        Atomic layers along z (at least :data:`MIN_LAYERS`).
    repeats : (int, int), optional
        Lateral repeats of the orthogonal surface cell, as ASE's ``size[:2]``
        (``ny`` even for (110) and (111)).
    lateral_nm : (float, float), optional
        Requested lateral size, nm, rounded to the nearest whole repeats
        (:func:`repeats_for`). Give exactly one of ``repeats`` and ``lateral_nm``.
    a_A : float
        Lattice constant, Å.

    Returns
    -------
    Cell
        One ``LIM`` residue per atom (one chain); ``box_nm = (Lx, Ly, layers * d)``
        where ``d`` is the layer spacing (the slab alone is a bulk crystal
        periodic in z too); ``provenance["slab"]`` holds face, layers, repeats,
        lattice constant and its source, layer spacing, thickness and atom count.

    Raises
    ------
    SpecError
        Unknown face, too few layers, bad repeats.
    """
    from openmm import app

    from aseimd.build.cell import Cell

    face = _check_face(face)
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < MIN_LAYERS:
        raise SpecError(f"slab layers must be an integer >= {MIN_LAYERS}, got {layers!r}")
    if not (isinstance(a_A, (int, float)) and math.isfinite(a_A) and a_A > 0):
        raise SpecError(f"lattice constant a_A must be a positive number, got {a_A!r}")
    if (repeats is None) == (lateral_nm is None):
        raise SpecError("give exactly one of slab repeats [nx, ny] and lateral_nm [x, y]")
    g = slab_geometry(face, a_A=a_A)
    if repeats is None:
        repeats = repeats_for(face, lateral_nm, a_A=a_A)
    repeats = tuple(repeats)
    if (len(repeats) != 2 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1
                                 for n in repeats)):
        raise SpecError(f"slab repeats must be two positive integers [nx, ny], got {list(repeats)!r}")
    if repeats[1] % g.y_multiple:
        raise SpecError(f"slab repeats ny = {repeats[1]} not allowed for Li({face}): ny must be a multiple of "
                        f"{g.y_multiple} for an orthogonal cell")
    atoms = _ase_slab(face, (int(repeats[0]), int(repeats[1]), int(layers)), a_A)
    pos = atoms_to_nm(atoms.positions)
    pos[:, 2] -= pos[:, 2].min()
    order = np.lexsort((pos[:, 0], pos[:, 1], np.round(pos[:, 2], 6)))  # layer by layer, bottom up
    pos = pos[order]
    lateral = atoms_to_nm(np.diag(atoms.cell.array)[:2])
    thickness = (layers - 1) * g.layer_spacing_nm
    top = app.Topology()
    chain = top.addChain()
    for _ in range(len(pos)):
        top.addAtom(METAL_ATOM, app.element.lithium, top.addResidue(METAL_RESIDUE, chain))
    provenance = {"slab": {
        "material": "Li", "structure": "bcc", "face": face, "layers": int(layers),
        "repeats": [int(repeats[0]), int(repeats[1])], "lattice_constant_A": float(a_A),
        "lattice_constant_source": LI_BCC_LATTICE_SOURCE,
        "layer_spacing_nm": g.layer_spacing_nm, "thickness_nm": float(thickness),
        "lateral_nm": [float(lateral[0]), float(lateral[1])], "n_atoms": int(len(pos)),
        "builder": "ase.build.bcc" + face + " (orthogonal=True)",
    }}
    box = np.array([lateral[0], lateral[1], layers * g.layer_spacing_nm])
    return Cell(topology=top, positions_nm=pos, box_nm=box, provenance=provenance)
