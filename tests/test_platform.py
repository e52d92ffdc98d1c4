"""Platform selection (aseimd.simulate.platform): auto order, fallbacks, errors."""

import pytest

import aseimd.simulate.platform as plat
from aseimd.errors import SpecError


def test_explicit_cpu_and_reference():
    cpu = plat.select_platform("cpu", threads=1)
    assert cpu.name == "CPU" and cpu.properties == {"Threads": "1"}
    ref = plat.select_platform("Reference")
    assert ref.name == "Reference" and ref.properties == {}
    assert ref.platform().getName() == "Reference"


def test_auto_never_picks_reference():
    choice = plat.select_platform("auto")
    assert choice.name in ("CUDA", "OpenCL", "CPU")


@pytest.fixture
def fake_machine(monkeypatch):
    """A machine whose registered platforms and working ones are chosen by the test."""

    def install(registered, working):
        monkeypatch.setattr(plat, "_registered_names", lambda: list(registered))
        monkeypatch.setattr(plat, "_probe", lambda name, props: None if name in working else "no device")

    return install


def test_auto_prefers_cuda_with_mixed_precision(fake_machine):
    fake_machine(["Reference", "CPU", "OpenCL", "CUDA"], {"Reference", "CPU", "OpenCL", "CUDA"})
    choice = plat.select_platform("auto")
    assert choice.name == "CUDA" and choice.properties["Precision"] == "mixed"


def test_auto_falls_back_cuda_to_opencl_to_cpu(fake_machine):
    fake_machine(["Reference", "CPU", "OpenCL", "CUDA"], {"Reference", "CPU", "OpenCL"})
    choice = plat.select_platform("auto")
    assert choice.name == "OpenCL" and choice.properties == {"Precision": "mixed"}
    assert choice.skipped == {"CUDA": "no device"}

    fake_machine(["Reference", "CPU", "OpenCL", "CUDA"], {"Reference", "CPU"})
    choice = plat.select_platform("auto", threads=3)
    assert choice.name == "CPU" and choice.properties == {"Threads": "3"}
    assert set(choice.skipped) == {"CUDA", "OpenCL"}
    assert choice.to_dict()["requested"] == "auto"


def test_auto_with_nothing_usable(fake_machine):
    fake_machine(["Reference"], {"Reference"})
    with pytest.raises(SpecError, match="no usable platform.*this machine has: Reference"):
        plat.select_platform("auto")


def test_unavailable_platform_lists_what_this_machine_has(fake_machine):
    fake_machine(["Reference", "CPU", "CUDA"], {"Reference", "CPU"})
    with pytest.raises(SpecError, match=r"platform 'OpenCL' is not available; this machine has: Reference, CPU"):
        plat.select_platform("OpenCL")
    with pytest.raises(SpecError, match=r"'CUDA' cannot be used \(no device\); this machine has: Reference, CPU"):
        plat.select_platform("CUDA")


def test_unknown_platform_name():
    with pytest.raises(SpecError, match=r"unknown platform 'Metal'; allowed: auto, CUDA, OpenCL, CPU, Reference"):
        plat.select_platform("Metal")
    with pytest.raises(SpecError, match="threads must be a positive integer"):
        plat.select_platform("CPU", threads=0)


def test_far_too_many_threads_is_bad_input_not_an_abort(monkeypatch):
    """OpenMM aborts the process (std::terminate) on e.g. 100000 threads: refused first, with the limit."""
    monkeypatch.setattr(plat.os, "cpu_count", lambda: 2)
    assert plat.select_platform("CPU", threads=8).properties == {"Threads": "8"}
    with pytest.raises(SpecError, match=r"threads 9 not allowed; allowed: 1 to 8 \(4 per CPU"):
        plat.select_platform("CPU", threads=9)


def test_deterministic_properties():
    assert plat.default_properties("CUDA", deterministic=True) == {"Precision": "mixed", "DeterministicForces": "true"}
    assert plat.default_properties("CPU", threads=1, deterministic=True) == {
        "Threads": "1", "DeterministicForces": "true"}
    assert plat.default_properties("Reference", deterministic=True) == {}
