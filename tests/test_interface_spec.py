"""The interface spec: shipped specs validate, misspelled keys and bad values fail in one line."""

import copy

import pytest

from aseimd.build.spec import InterfaceSpec, load_interface_spec
from aseimd.errors import AseimdError, SpecError
from aseimd.resources import data_dir

SHIPPED = sorted(p.stem for p in data_dir("systems").glob("*.yaml"))

BASE = {
    "slab": {"face": "100", "layers": 4, "lateral_nm": [3.0, 3.0]},
    "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 3.0},
}


def test_every_system_spec_is_shipped_and_valid():
    assert {"li-electrolyte", "li-peo-lipf6", "li-pan-lipf6", "li-pdms-lipf6", "li-nafion-lipf6",
            "quickstart"} <= set(SHIPPED)
    for name in SHIPPED:
        spec = load_interface_spec(name)
        assert spec.name == name
        assert min(spec.slab.box_xy_nm()) >= 2 * spec.cutoff_nm
        assert InterfaceSpec.from_dict(spec.to_dict()) == spec  # to_dict is complete


def test_defaults_and_rounding():
    spec = load_interface_spec(BASE)
    assert spec.polymer is None and spec.cutoff_nm == 1.2 and spec.charge_scale == 0.8
    assert spec.lj_long_range_correction is False and spec.gap_nm == 0.25 and spec.seed == 0
    assert spec.slab.resolved_repeats() == (9, 9)  # 3.0 / 0.351 = 8.5 -> 9
    assert spec.slab.box_xy_nm() == pytest.approx((9 * 0.351, 9 * 0.351))


def _with(path, value):
    data = copy.deepcopy(BASE)
    *parents, key = path
    target = data
    for p in parents:
        target = target.setdefault(p, {})
    target[key] = value
    return data


@pytest.mark.parametrize("data, message", [
    (_with(["cutof_nm"], 1.2), "unknown key 'cutof_nm' in interface spec; allowed keys: name, slab"),
    (_with(["slab", "layer"], 6), "unknown key 'layer' in slab; allowed keys: face, layers, lateral_nm, repeats"),
    (_with(["electrolyte", "thickness"], 3), "unknown key 'thickness' in electrolyte"),
    (_with(["polymer"], {"name": "PEO", "thickness_nm": 2.0, "nrepeat": 5}), "unknown key 'nrepeat' in polymer"),
    (_with(["slab", "lateral_nm"], [2.0, 2.0]), "smaller than twice the cut-off (2.4 nm)"),
    (_with(["slab", "repeats"], [9, 9]), "slab needs exactly one of lateral_nm"),
    (_with(["slab", "face"], "211"), "slab.face '211' not allowed; allowed: 100, 110, 111"),
    (_with(["slab", "layers"], 2), "slab.layers must be an integer >= 3"),
    (_with(["electrolyte", "thickness_nm"], 0.5), "electrolyte.thickness_nm must be >= 1.5"),
    (_with(["polymer"], {"name": "PEO", "thickness_nm": 0.3}), "polymer.thickness_nm must be >= 1"),
    (_with(["electrolyte", "recipe"], "1 M LiPF6 in XYZ"), "XYZ"),
    (_with(["charge_scale"], 1.5), "charge_scale must be in (0, 1]"),
    (_with(["lj_long_range_correction"], "yes"), "lj_long_range_correction must be true or false"),
    ({"electrolyte": BASE["electrolyte"]}, "needs a 'slab' block"),
])
def test_bad_spec_fails_in_one_line(data, message):
    with pytest.raises(SpecError) as info:
        load_interface_spec(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_spec_files(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("slab: {face: '100', layers: 4, lateral_nm: [3, 3]}\n"
                    "electrolyte: {recipe: '1 M LiPF6 in EC', thickness_nm: 2}\n")
    assert load_interface_spec(path).electrolyte.recipe == "1 M LiPF6 in EC"
    with pytest.raises(SpecError, match="not found; give a YAML file or one of the shipped specs"):
        load_interface_spec(tmp_path / "missing.yaml")
    path.write_text("slab: [1, 2\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_interface_spec(path)


@pytest.mark.parametrize("polymer, message", [
    ({"name": "PVDF", "thickness_nm": 2.0}, "PVDF"),
    ({"name": "PEO", "thickness_nm": 2.0, "tacticity": "isotactic"}, "tacticity 'isotactic' not allowed for PEO"),
    ({"name": "LiNafion", "thickness_nm": 2.0, "ew_g_per_mol": 100.0}, "ew_g_per_mol 100.0 impossible"),
])
def test_bad_polymer_fails_at_load(polymer, message):
    with pytest.raises(AseimdError) as info:
        load_interface_spec(_with(["polymer"], polymer))
    assert message in str(info.value) and "\n" not in str(info.value)
