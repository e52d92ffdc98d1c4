"""Recipe parsing: every written form, canonical strings, and one-line errors naming the bad value."""

import pytest

from aseimd.build.recipe import AdditiveAmount, Recipe, SaltAmount, parse_recipe
from aseimd.errors import AseimdError, SpecError

# text, solvents, ratio, basis, salts [(salt, value, unit)], additives [(species, value, unit)], canonical
FORMS = [
    ("1.0 M LiPF6 in EC:DMC 1:1 v/v", ("EC", "DMC"), (1, 1), "v/v", [("LiPF6", 1.0, "M")], [],
     "1 M LiPF6 in EC:DMC 1:1 v/v"),
    ("1.2 m LiTFSI in PC", ("PC",), (1,), "v/v", [("LiTFSI", 1.2, "m")], [], "1.2 m LiTFSI in PC"),
    ("1 M LiPF6 in EC:EMC 3:7 w/w", ("EC", "EMC"), (3, 7), "w/w", [("LiPF6", 1.0, "M")], [],
     "1 M LiPF6 in EC:EMC 3:7 w/w"),
    ("1 M LiPF6 in EC:DMC 1:1 mol/mol", ("EC", "DMC"), (1, 1), "mol/mol", [("LiPF6", 1.0, "M")], [],
     "1 M LiPF6 in EC:DMC 1:1 mol/mol"),
    ("0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 v/v", ("EC", "DMC"), (1, 1), "v/v",
     [("LiPF6", 0.8, "M"), ("LiFSI", 0.2, "M")], [], "0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 v/v"),
    ("1 M LiPF6 in EC:DEC 1:1 v/v + 5 wt% FEC", ("EC", "DEC"), (1, 1), "v/v", [("LiPF6", 1.0, "M")],
     [("FEC", 5.0, "wt%")], "1 M LiPF6 in EC:DEC 1:1 v/v + 5 wt% FEC"),
    ("1 mol/L lipf6 in ec/dmc (1:1, by volume)+2 vol% fec", ("EC", "DMC"), (1, 1), "v/v",
     [("LiPF6", 1.0, "M")], [("FEC", 2.0, "vol%")], "1 M LiPF6 in EC:DMC 1:1 v/v + 2 vol% FEC"),
    ("0.5 mol/kg LiFSI in EC:PC:DMC 1:1:3 wt + 1 mol% DEC", ("EC", "PC", "DMC"), (1, 1, 3), "w/w",
     [("LiFSI", 0.5, "m")], [("DEC", 1.0, "mol%")], "0.5 m LiFSI in EC:PC:DMC 1:1:3 w/w + 1 mol% DEC"),
    ("EC:DMC 30:70 w/w", ("EC", "DMC"), (30, 70), "w/w", [], [], "EC:DMC 30:70 w/w"),
    ("PC", ("PC",), (1,), "v/v", [], [], "PC"),
]


@pytest.mark.parametrize("text, solvents, ratio, basis, salts, additives, canonical", FORMS)
def test_parse_forms(text, solvents, ratio, basis, salts, additives, canonical):
    r = parse_recipe(text)
    assert r.solvents == solvents
    assert r.ratio == tuple(float(x) for x in ratio)
    assert r.ratio_basis == basis
    assert [(s.salt, s.concentration, s.unit) for s in r.salts] == salts
    assert [(a.species, a.amount, a.unit) for a in r.additives] == additives
    assert str(r) == canonical
    assert Recipe.parse(canonical) == r  # canonical form round-trips


def test_recipe_is_frozen_and_hashable():
    r = Recipe.parse("1 M LiPF6 in EC:DMC 1:1 v/v")
    with pytest.raises(AttributeError):
        r.solvents = ("PC",)
    assert len({r, Recipe.parse("1.00 M LiPF6 in EC/DMC 1:1 vol")}) == 1


def test_direct_construction_is_validated():
    r = Recipe(solvents=("ec", "dmc"), ratio=(1, 2), ratio_basis="w/w",
               salts=(SaltAmount("lipf6", 1.0, "M"),), additives=(AdditiveAmount("fec", 2, "wt%"),))
    assert str(r) == "1 M LiPF6 in EC:DMC 1:2 w/w + 2 wt% FEC"
    with pytest.raises(SpecError, match="'1:2:3'"):
        Recipe(solvents=("EC", "DMC"), ratio=(1, 2, 3))


# text, a fragment the one-line message must contain (the bad value), and what is allowed
BAD = [
    ("1 M LiXX in EC:DMC 1:1 v/v", "'LiXX'", "LiPF6"),
    ("1 M LiPF6 in EC:XYZ 1:1 v/v", "'XYZ'", "DMC"),
    ("1 M LiPF6 in EC + 5 wt% PF6", "'PF6'", "FEC"),
    ("0 M LiPF6 in EC", "got 0", "positive"),
    ("-1 M LiPF6 in EC", "got -1", "positive"),
    ("1 M LiPF6 in EC:DMC 1:1:1 v/v", "'1:1:1'", "2 solvent"),
    ("1 M LiPF6 in EC 1:1 v/v", "'1:1'", "1 solvent"),
    ("1 M LiPF6 in EC:DMC 0:1 v/v", "got 0", "positive"),
    ("1 M LiPF6 in EC:DMC 1:1 x/y", "'x/y'", "v/v, w/w, mol/mol"),
    ("1 M LiPF6 in EC:DMC 1:1", "'1:1'", "v/v, w/w, mol/mol"),
    ("1 M LiPF6 in EC:DMC", "'EC:DMC'", "ratio"),
    ("1 M LiPF6 in EC:DMC a:b v/v", "'a:b'", "numbers separated by ':'"),
    ("1 mM LiPF6 in EC", "'1 mM LiPF6'", "mol/kg"),
    ("1 M LiPF6 in EC + 5 % FEC", "'%'", "wt%, vol%, mol%"),
    ("1 M LiPF6 in EC + 120 wt% FEC", "got 120", "below 100"),
    ("1 M LiPF6 + 1 m LiFSI in EC", "(M, m)", "every salt in M"),
    ("1 M LiPF6 in EC:EC 1:1 v/v", "'EC'", "twice"),
    ("1 M LiPF6 + 1 M LiPF6 in EC", "'LiPF6'", "twice"),
    ("1 M LiPF6 in EC + 5 wt% EC", "'EC'", "solvent"),
    ("1 M LiPF6", "'1 M LiPF6'", "in <solvents>"),
    ("", "empty", "1.0 M LiPF6"),
]


@pytest.mark.parametrize("text, bad, allowed", BAD)
def test_bad_recipes_name_the_value(text, bad, allowed):
    with pytest.raises(SpecError) as info:
        parse_recipe(text)
    message = str(info.value)
    assert isinstance(info.value, AseimdError)
    assert "\n" not in message
    assert bad in message
    assert allowed in message
