"""Recipe -> counts: closed-form checks, the documented worked example, sizing and impossible inputs."""

import math

import numpy as np
import pytest

from aseimd.build.composition import (
    AVOGADRO_PER_MOL,
    SALT_MOLAR_VOLUME_CM3_PER_MOL,
    continuous_amounts,
    count_molecules,
    salt_molar_mass_g_per_mol,
    solvent_mole_fractions,
)
from aseimd.build.recipe import Recipe
from aseimd.errors import BuildError, SpecError
from aseimd.species import get_species

RECIPES = [
    "1.0 M LiPF6 in EC:DMC 1:1 v/v",
    "1.2 m LiTFSI in PC",
    "1 M LiPF6 in EC:EMC 3:7 w/w",
    "1 M LiPF6 in EC:DMC 1:1 mol/mol",
    "0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 v/v",
    "1 M LiPF6 in EC:DEC 1:1 v/v + 5 wt% FEC",
    "1 M LiPF6 in EC:DEC 1:1 v/v + 5 vol% FEC + 2 mol% DMC",
    "0.5 m LiFSI in EC:PC:DMC 1:1:3 w/w + 10 wt% FEC",
]


def _vm(name):
    sp = get_species(name)
    return sp.molar_mass_g_per_mol / sp.density_g_per_cm3


def test_lipf6_molar_volume_from_crystal_cell():
    # R-3, hexagonal setting a = 4.932 A, c = 12.658 A, Z = 3 -> 88.9 A^3 per LiPF6
    v_A3 = math.sqrt(3) / 2 * 4.932**2 * 12.658 / 3
    assert SALT_MOLAR_VOLUME_CM3_PER_MOL["LiPF6"] == pytest.approx(v_A3 * 0.602214076, rel=1e-12)
    density = salt_molar_mass_g_per_mol("LiPF6") / SALT_MOLAR_VOLUME_CM3_PER_MOL["LiPF6"]
    assert density == pytest.approx(2.84, abs=0.01)


@pytest.mark.parametrize("text", RECIPES)
def test_continuous_amounts_meet_every_condition(text):
    """The linear solve reproduces each requested number exactly (no rounding yet)."""
    recipe = Recipe.parse(text)
    a = continuous_amounts(recipe)
    assert a.solvents.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(a.salt_concentrations(), [s.concentration for s in recipe.salts], rtol=1e-10)
    np.testing.assert_allclose(a.solvent_ratio(), recipe.ratio, rtol=1e-10)
    np.testing.assert_allclose(a.additive_percentages(), [x.amount for x in recipe.additives], rtol=1e-10)


def test_molarity_closed_form_one_salt():
    """n_salt = c V_liq / (1 - c v_salt) per mole of a v/v blend, written out by hand."""
    v_ec, v_dmc = _vm("EC"), _vm("DMC")
    x_ec = (1 / v_ec) / (1 / v_ec + 1 / v_dmc)  # equal volumes
    v_liq = x_ec * v_ec + (1 - x_ec) * v_dmc
    c = 1.0e-3  # mol/cm^3
    n_salt = c * v_liq / (1 - c * SALT_MOLAR_VOLUME_CM3_PER_MOL["LiPF6"])
    a = continuous_amounts(Recipe.parse("1.0 M LiPF6 in EC:DMC 1:1 v/v"))
    assert a.solvents[0] == pytest.approx(x_ec, rel=1e-12)
    assert a.salts[0] == pytest.approx(n_salt, rel=1e-12)


def test_molality_and_mass_ratio_closed_form():
    m_ec, m_emc = get_species("EC").molar_mass_g_per_mol, get_species("EMC").molar_mass_g_per_mol
    n_ec, n_emc = 3 / m_ec, 7 / m_emc  # 3:7 w/w
    x_ec = n_ec / (n_ec + n_emc)
    np.testing.assert_allclose(solvent_mole_fractions(Recipe.parse("EC:EMC 3:7 w/w")), [x_ec, 1 - x_ec])
    a = continuous_amounts(Recipe.parse("1.2 m LiTFSI in EC:EMC 3:7 w/w"))
    mass_kg = (x_ec * m_ec + (1 - x_ec) * m_emc) / 1000
    assert a.salts[0] == pytest.approx(1.2 * mass_kg, rel=1e-12)


def test_worked_example_counts():
    """docs/electrolyte_recipes.md, 'Worked example': exact counts and achieved numbers."""
    c = count_molecules("1.0 M LiPF6 in EC:DMC 1:1 v/v", n_solvent=500)
    assert c.species_counts == {"Li": 39, "PF6": 39, "EC": 280, "DMC": 220}
    rep = c.report()
    assert rep["salts"][0]["achieved"] == pytest.approx(0.98995, abs=5e-5)
    assert rep["solvent_ratio"]["achieved"] == pytest.approx([1.0006, 0.9994], abs=1e-4)
    assert rep["estimated_density_g_per_cm3"] == pytest.approx(1.2793, abs=1e-4)
    assert rep["estimated_box_edge_nm"] == pytest.approx(4.0293, abs=1e-4)
    # the achieved molarity by hand from the integer counts
    v_cm3 = (280 * _vm("EC") + 220 * _vm("DMC") + 39 * SALT_MOLAR_VOLUME_CM3_PER_MOL["LiPF6"]) / AVOGADRO_PER_MOL
    assert rep["salts"][0]["achieved"] == pytest.approx(39 / AVOGADRO_PER_MOL / (v_cm3 / 1000), rel=1e-12)


@pytest.mark.parametrize("text", RECIPES)
@pytest.mark.parametrize("n_solvent", [50, 500, 5000])
def test_integer_counts_are_close_to_the_recipe(text, n_solvent):
    recipe = Recipe.parse(text)
    try:
        c = count_molecules(recipe, n_solvent=n_solvent)
    except BuildError as exc:  # only small boxes may be too small for a minor component
        assert n_solvent == 50 and "too small" in str(exc)
        return
    assert sum(c.solvent_counts) == n_solvent
    assert all(isinstance(n, int) and n >= 1 for n in c.species_counts.values())
    rep = c.report()
    for s, n in zip(rep["salts"], c.salt_counts):
        # rounding a count of n changes it by at most 1/2, plus the small change of the volume
        assert abs(s["achieved"] - s["requested"]) / s["requested"] <= 0.5 / n + 0.5 / n_solvent + 1e-9
    assert sum(c.species_counts.values()) == sum(c.solvent_counts) + 2 * sum(c.salt_counts) + sum(c.additive_counts)


def test_lithium_is_shared_between_salts():
    c = count_molecules("0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 v/v", n_solvent=500)
    counts = c.species_counts
    assert list(counts) == ["Li", "PF6", "FSI", "EC", "DMC"]
    assert counts["Li"] == counts["PF6"] + counts["FSI"]


@pytest.mark.parametrize("edge_nm", [3.0, 4.0, 6.0])
def test_box_edge_sizing(edge_nm):
    c = count_molecules("1.0 M LiPF6 in EC:DMC 1:1 v/v", box_edge_nm=edge_nm)
    assert c.volume_nm3 ** (1 / 3) == pytest.approx(edge_nm, rel=0.02)


def test_neat_solvent_density_is_the_table_density():
    c = count_molecules("EC", n_solvent=100)
    assert c.species_counts == {"EC": 100}
    assert c.density_g_per_cm3 == pytest.approx(get_species("EC").density_g_per_cm3, rel=1e-12)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"n_solvent": 10, "box_edge_nm": 2.0}, "got both"),
    ({}, "got neither"),
    ({"n_solvent": 0}, "got 0"),
    ({"n_solvent": 2.5}, "got 2.5"),
    ({"box_edge_nm": -1.0}, "got -1.0"),
])
def test_bad_sizing(kwargs, fragment):
    with pytest.raises(SpecError, match=fragment):
        count_molecules("1 M LiPF6 in EC", **kwargs)


@pytest.mark.parametrize("text, kwargs, fragments", [
    ("20 M LiPF6 in EC", {"n_solvent": 100}, ["20 M LiPF6", "107 %"]),
    ("0.01 M LiPF6 in EC", {"n_solvent": 20}, ["LiPF6 ion pair at 0.01 M", "n_solvent >= 750"]),
    ("1 M LiPF6 in EC:DMC 1:1 v/v", {"box_edge_nm": 0.8}, ["box_edge_nm = 0.8", "box_edge_nm >= "]),
    ("1 M LiPF6 in EC:DMC 1:50 v/v", {"n_solvent": 20}, ["EC molecule", "n_solvent >= "]),
    ("1 M LiPF6 in EC + 60 wt% FEC + 50 wt% DMC", {"n_solvent": 100}, ["60 wt% FEC + 50 wt% DMC"]),
    # additives of one unit adding up to exactly 100 %: a singular system, the same one-line refusal
    ("EC + 50 mol% FEC + 50 mol% PC", {"n_solvent": 20}, ["impossible recipe", "50 mol% FEC + 50 mol% PC"]),
    ("EC + 40 wt% FEC + 60 wt% DMC", {"n_solvent": 20}, ["impossible recipe"]),
])
def test_impossible_compositions(text, kwargs, fragments):
    with pytest.raises(BuildError) as info:
        count_molecules(text, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)
