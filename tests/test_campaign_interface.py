"""Interface systems in campaigns: compare-polymers expands and validates; a tiny Li cell runs end to end.

Skipped where the interface builder (``aseimd.build.interface``) is not installed.
"""

import json

import pytest
import yaml

from aseimd.campaign.spec import CampaignSpec
from aseimd.errors import SpecError
from aseimd.pipeline import PipelineSpec, run_pipeline
from aseimd.report.compare import JobResults, write_comparison
from aseimd.resources import data_file

pytest.importorskip("aseimd.build.interface")
pytest.importorskip("aseimd.build.spec")

TINY_INTERFACE_PROTOCOL = {
    "name": "tiny-interface", "timestep_fs": 2.0, "seed": 11,
    "report": {"thermo_steps": 5, "trajectory_steps": 1, "checkpoint_steps": 100},  # >= 160 frames for GLS
    "stages": [
        {"type": "minimize", "max_iterations": 200},
        {"type": "nvt", "length_steps": 50},
        {"type": "npt", "length_steps": 50, "coupling": "z", "barostat_interval_steps": 10},
        {"type": "production", "length_steps": 200, "volume_from": "npt"},
    ],
}
#: A bare-Li control cell small enough for a test (about 30 s end to end on one CPU thread).
TINY_BARE = {
    "kind": "interface", "slab": {"face": "100", "layers": 3, "repeats": [6, 6]}, "polymer": None,
    "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 2.0}, "cutoff_nm": 0.9, "seed": 3,
}


def test_compare_polymers_expands_into_validated_interface_jobs():
    data = yaml.safe_load(data_file("workflows", "compare-polymers.yaml").read_text())
    data["protocol"] = TINY_INTERFACE_PROTOCOL  # the shipped file names the interface protocol
    jobs = CampaignSpec.from_dict(data).jobs()  # every interface spec through load_interface_spec
    assert len(jobs) == 15
    assert [j.name for j in jobs[::3]] == ["PEO_LiPF6-ECDMC_298.15K_r0", "PAN_LiPF6-ECDMC_298.15K_r0",
                                           "PDMS_LiPF6-ECDMC_298.15K_r0", "LiNafion_LiPF6-ECDMC_298.15K_r0",
                                           "bare_LiPF6-ECDMC_298.15K_r0"]
    bare = jobs[-1].pipeline.system
    assert bare["polymer"] is None and bare["electrolyte"]["recipe"] == "1.0 M LiPF6 in EC:DMC 1:1 v/v"
    assert {j.pipeline.system["polymer"]["name"] for j in jobs[:12]} == {"PEO", "PAN", "PDMS", "LiNafion"}
    assert list(jobs[0].pipeline.analyses) == ["diffusion", "transference", "coordination", "solvent_cn",
                                               "profile"]


def test_shipped_compare_polymers_loads_with_the_interface_protocol():
    from aseimd.simulate.protocol import shipped_protocols

    if "interface" not in shipped_protocols():
        pytest.skip("workflows/interface.yaml is not installed")
    jobs = CampaignSpec.load("compare-polymers").jobs()
    assert len(jobs) == 15 and jobs[0].pipeline.protocol["name"] == "interface"
    assert jobs[0].pipeline.protocol["stages"][2]["coupling"] == "z"


def test_tiny_interface_through_the_pipeline_and_report(tmp_path):
    spec = PipelineSpec.from_dict({
        "system": TINY_BARE, "protocol": TINY_INTERFACE_PROTOCOL,
        "analyses": ["diffusion", "transference", "coordination", "profile"],
        "platform": "CPU", "threads": 1, "deterministic": True,
    })
    job = tmp_path / "job"
    result = run_pipeline(spec, job, progress=False)
    assert result.built and result.run.status == "finished" and result.run.n_frames == 200
    build = json.loads((job / "system" / "build.json").read_text())
    assert build["builder"] == "interface"
    profile = json.loads((job / "analysis" / "profile.json").read_text())
    assert {"LiMetal", "Li", "PF6", "EC", "DMC"} <= set(profile["groups"])
    assert profile["charge_source"].endswith("system.xml")
    d = json.loads((job / "analysis" / "diffusion.json").read_text())
    assert "Li" in d and "LiMetal" not in d  # the frozen slab is not a diffusing species
    c = json.loads((job / "analysis" / "coordination.json").read_text())
    assert c["groups"]["Li"]["selection"] == "resname LI"  # Li+ ions, not the metal (LIM)
    again = run_pipeline(spec, job, progress=False)
    assert not again.built and again.computed == ()
    other = PipelineSpec.from_dict(spec.to_dict() | {"system": TINY_BARE | {"seed": 4}})
    with pytest.raises(SpecError, match="holds a different system"):
        run_pipeline(other, job, progress=False)
    written = write_comparison([JobResults("bare_r0", "bare", job / "analysis")], tmp_path / "report")
    assert written["density_profiles"].stat().st_size > 0
