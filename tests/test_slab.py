"""BCC Li slabs: lattice geometry against closed-form BCC values, repeats, errors."""

import numpy as np
import pytest

from aseimd.build.slab import FACES, LI_BCC_LATTICE_A, build_li_slab, repeats_for, slab_geometry
from aseimd.errors import SpecError

A_NM = LI_BCC_LATTICE_A / 10.0

# closed-form BCC geometry: layer spacing of (hkl) planes is a / sqrt(h^2 + k^2 + l^2), halved where the
# body-centre atom adds an intermediate layer (h + k + l odd): (100) a/2, (110) a/sqrt(2), (111) a/(2 sqrt(3))
LAYER_SPACING_NM = {"100": A_NM / 2, "110": A_NM / np.sqrt(2), "111": A_NM / (2 * np.sqrt(3))}


def _min_image(d, box):
    return d - box * np.round(d / box)


@pytest.mark.parametrize("face", FACES)
def test_slab_is_a_bcc_crystal(face):
    cell = build_li_slab(face, layers=12, lateral_nm=(2.0, 2.0))  # 12: a whole stacking period of every face
    # the slab box (layers x spacing) is a bulk crystal: number density 2 / a^3
    assert cell.n_atoms / np.prod(cell.box_nm) == pytest.approx(2 / A_NM ** 3, rel=1e-9)
    assert slab_geometry(face).layer_spacing_nm == pytest.approx(LAYER_SPACING_NM[face], rel=1e-9)
    z = np.unique(np.round(cell.positions_nm[:, 2], 6))
    assert len(z) == 12 and z[0] == 0.0
    np.testing.assert_allclose(np.diff(z), LAYER_SPACING_NM[face], atol=2e-6)
    # every atom has 8 nearest neighbours at a sqrt(3)/2 (periodic in x and y, bulk-periodic in z)
    d = _min_image(cell.positions_nm[:, None, :] - cell.positions_nm[None, :, :], cell.box_nm)
    r = np.linalg.norm(d, axis=-1)
    np.fill_diagonal(r, np.inf)
    nn = A_NM * np.sqrt(3) / 2
    assert r.min() == pytest.approx(nn, rel=1e-9)
    np.testing.assert_array_equal((np.abs(r - nn) < 1e-6).sum(axis=1), 8)
    assert all(res.name == "LIM" for res in cell.topology.residues())
    assert cell.provenance["slab"]["lattice_constant_A"] == 3.51


def test_lateral_size_is_rounded_to_whole_repeats():
    assert repeats_for("100", (3.5, 3.5)) == (10, 10)
    cell = build_li_slab("100", layers=3, lateral_nm=(3.5, 2.0))
    np.testing.assert_allclose(cell.box_nm[:2], [10 * A_NM, 6 * A_NM])
    nx, ny = repeats_for("110", (2.0, 2.0))
    assert ny % 2 == 0
    assert build_li_slab("100", layers=3, repeats=(4, 5)).n_atoms == 4 * 5 * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"face": "211", "lateral_nm": (2, 2)}, "unknown Li face '211'; allowed: 100, 110, 111"),
    ({"layers": 2, "lateral_nm": (2, 2)}, "slab layers must be an integer >= 3"),
    ({"face": "110", "repeats": (4, 3)}, "ny must be a multiple of 2"),
    ({}, "give exactly one of slab repeats"),
    ({"repeats": (0, 3)}, "two positive integers"),
])
def test_bad_slab_input(kwargs, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        build_li_slab(**kwargs)
    assert "\n" not in str(info.value)
