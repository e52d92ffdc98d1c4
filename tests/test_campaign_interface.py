"""Interface systems in campaigns: compare-polymers expands and validates; a tiny coated cell runs end to end.

Skipped where the interface builder (``aseimd.build.interface``) is not installed.
"""

import json

import pytest
import yaml

from aseimd.campaign.spec import CampaignSpec
from aseimd.pipeline import PipelineSpec, run_pipeline
from aseimd.report.compare import JobResults, write_comparison
from aseimd.resources import data_file

pytest.importorskip("aseimd.build.interface")
pytest.importorskip("aseimd.build.spec")

TINY_INTERFACE_PROTOCOL = {
    "name": "tiny-interface", "timestep_fs": 2.0, "seed": 11,
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 100},
    "stages": [
        {"type": "minimize", "max_iterations": 100},
        {"type": "nvt", "length_steps": 100},
        {"type": "npt", "length_steps": 100, "coupling": "z", "barostat_interval_steps": 25},
        {"type": "production", "length_steps": 400, "volume_from": "npt"},
    ],
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


def test_tiny_coated_interface_through_the_pipeline_and_report(tmp_path):
    system = yaml.safe_load(data_file("systems", "quickstart.yaml").read_text())
    system.pop("name", None)
    spec = PipelineSpec.from_dict({
        "system": {"kind": "interface", **system}, "protocol": TINY_INTERFACE_PROTOCOL,
        "analyses": ["diffusion", "transference", "coordination", "profile"],
        "platform": "CPU", "threads": 1, "deterministic": True,
    })
    result = run_pipeline(spec, tmp_path / "job", progress=False)
    assert result.built and result.run.status == "finished"
    build = json.loads((tmp_path / "job" / "system" / "build.json").read_text())
    assert build["builder"] == "interface"
    profile = json.loads((tmp_path / "job" / "analysis" / "profile.json").read_text())
    assert "LiMetal" in profile["groups"] and "PEO" in " ".join(profile["groups"])
    d = json.loads((tmp_path / "job" / "analysis" / "diffusion.json").read_text())
    assert "Li" in d and "LiMetal" not in d  # the frozen slab is not a diffusing species
    again = run_pipeline(spec, tmp_path / "job", progress=False)
    assert not again.built and again.computed == ()
    written = write_comparison([JobResults("PEO_r0", "PEO", tmp_path / "job" / "analysis")], tmp_path / "report")
    assert written["density_profiles"].stat().st_size > 0
