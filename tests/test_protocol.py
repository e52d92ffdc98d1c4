"""Protocol YAML parsing and validation (aseimd.simulate.protocol)."""

import pytest
import yaml

from aseimd.errors import SpecError
from aseimd.simulate.protocol import (
    NPT,
    Duration,
    Minimize,
    Production,
    Protocol,
    apply_overrides,
    shipped_protocols,
)

TINY = {
    "name": "tiny",
    "timestep_fs": 2.0,
    "report": {"thermo_steps": 10, "trajectory_ps": 0.04, "checkpoint_steps": 50},
    "stages": [
        {"type": "minimize"},
        {"type": "nvt", "length_steps": 100},
        {"type": "npt", "length_ps": 0.4, "coupling": "z"},
        {"type": "production", "length_steps": 300},
    ],
}


def test_shipped_protocols_parse_and_roundtrip():
    shipped = shipped_protocols()
    assert {"default", "quickstart"} <= set(shipped)
    for name in shipped:
        protocol = Protocol.load(name)
        assert Protocol.from_dict(protocol.to_dict()) == protocol
    default = Protocol.default()
    assert [s.type for s in default.stages] == ["minimize", "nvt", "npt", "production"]
    assert default.production.stage.name == "production"
    assert default.npt_source(default.production.stage).stage.name == "npt"


def test_quickstart_is_short():
    q = Protocol.quickstart()
    assert q.total_steps * q.timestep_fs * 1e-3 <= 100.0  # ps


def test_schedule_and_step_conversion():
    p = Protocol.from_dict(TINY)
    spans = [(s.stage.name, s.start_step, s.end_step) for s in p.schedule]
    assert spans == [("minimize", 0, 0), ("nvt", 0, 100), ("npt", 100, 300), ("production", 300, 600)]
    assert p.total_steps == 600
    assert (p.thermo_steps, p.trajectory_steps, p.checkpoint_steps) == (10, 20, 50)
    assert p.stage_at(0).stage.name == "nvt"
    assert p.stage_at(100).stage.name == "npt"
    assert p.stage_at(599).stage.name == "production"
    assert p.stage_at(600) is None
    assert isinstance(p.stages[0], Minimize) and isinstance(p.stages[2], NPT)
    assert p.stages[2].coupling == "z"
    assert p.blowup_temperature_K == pytest.approx(3 * 298.15)


@pytest.mark.parametrize(
    "where, key",
    [((), "temprature_K"), (("report",), "thermo_every"), (("stages", 1), "lenght_ps")],
)
def test_unknown_keys_fail_loudly(where, key):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    target = data
    for part in where:
        target = target[part]
    target[key] = 1
    with pytest.raises(SpecError) as err:
        Protocol.from_dict(data)
    message = str(err.value)
    assert repr(key) in message and "allowed keys:" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"stages": [{"type": "nvt"}]}, "length_ps or length_steps is required"),
        ({"stages": [{"type": "nvt", "length_ps": 1, "length_steps": 5}]}, "not both"),
        ({"stages": [{"type": "nvt", "length_ps": 0.003}]}, "not a whole number"),
        ({"stages": [{"type": "md", "length_ps": 1}]}, "unknown type 'md'"),
        ({"stages": [{"type": "npt", "length_ps": 1, "coupling": "xy"}]}, "allowed: isotropic"),
        ({"stages": [{"type": "production", "length_ps": 1}]}, "needs an earlier npt stage"),
        ({"stages": [{"type": "nvt", "length_ps": 1}, {"type": "minimize"}]}, "last stage must be an MD"),
        ({"stages": [{"type": "nvt", "length_ps": 1}, {"type": "nvt", "length_ps": 1}]}, "unique"),
        ({"temperature_K": -5}, "temperature_K must be > 0"),
        ({"seed": 0}, "seed must be an integer >= 1"),
        ({"stages": [{"type": "npt", "length_steps": 10}, {"type": "production", "length_steps": 10}]},
         "second half"),
        # ps must be whole steps at any length, and at least one step
        ({"stages": [{"type": "nvt", "length_ps": 20000.001}]}, "not a whole number"),
        ({"stages": [{"type": "nvt", "length_ps": 1e-9}]}, "less than one"),
        ({"report": {"thermo_ps": 1e-9}, "stages": [{"type": "nvt", "length_ps": 1}]}, "less than one"),
        ({"report": {"checkpoint_ps": 1e-9}, "stages": [{"type": "nvt", "length_ps": 1}]}, "less than one"),
        ({"report": {"thermo_ps": "1e-9"}}, r"YAML reads an exponent without a decimal point"),
        ({"report": []}, "report must be a mapping"),
    ],
)
def test_invalid_protocols(change, fragment):
    data = {**TINY, **change}
    with pytest.raises(SpecError, match=fragment):
        Protocol.from_dict(data)


def test_overrides_address_stages_by_name_and_swap_units():
    data = apply_overrides(TINY, ["temperature_K=330", "stages.npt.length_steps=400", "report.thermo_ps=0.04"])
    p = Protocol.from_dict(data)
    assert p.temperature_K == 330
    assert p.stages[2].length == Duration(400, "steps")
    assert p.thermo_steps == 20
    assert TINY["stages"][2] == {"type": "npt", "length_ps": 0.4, "coupling": "z"}  # input untouched
    with pytest.raises(SpecError, match="no stage named 'heat'"):
        apply_overrides(TINY, ["stages.heat.length_ps=3"])
    with pytest.raises(SpecError, match="key=value"):
        apply_overrides(TINY, ["temperature_K"])


def test_unknown_protocol_name_lists_shipped(tmp_path):
    with pytest.raises(SpecError, match=r"unknown protocol 'nope'; shipped: default, interface, quickstart"):
        Protocol.load("nope")
    with pytest.raises(SpecError, match="does not exist"):
        Protocol.load(tmp_path / "missing.yaml")
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert Protocol.load(path).name == "tiny"


def test_fingerprint_changes_with_any_setting():
    a = Protocol.from_dict(TINY)
    b = Protocol.from_dict(apply_overrides(TINY, ["stages.production.length_steps=320"]))
    assert a.fingerprint() == Protocol.from_dict(TINY).fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_production_volume_from_named_stage():
    data = apply_overrides(TINY, ["stages.production.volume_from=nvt"])
    with pytest.raises(SpecError, match="allowed: npt, none"):
        Protocol.from_dict(data)
    keep = Protocol.from_dict(apply_overrides(TINY, ["stages.production.volume_from=none"]))
    assert isinstance(keep.stages[-1], Production) and keep.npt_source(keep.stages[-1]) is None
