"""Every corrected block of forcefields/*.xml against the value of its cited source.

Expected values are typed here in the *source's* units, as printed in the source
(CL&P il.ff: Angstrom, kJ/mol, kJ/mol/A^2, degrees, OPLS V1..V4; GROMACS
ffnonbonded.itp: nm, kJ/mol) and converted here, so a transcription or
conversion error in the XML fails.  forcefields/README.md lists the same
values; the last test checks that the README table quotes them.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from aseimd.resources import data_dir

ILFF = "CL&P il.ff version 2019/06/19"
FFTOOL = "CL&P/fftool oplsaa.ff 'ethylene and propylene carbonate' (heigoers/clandpol copy, 2023/03/10)"
GMX = "GROMACS share/top/oplsaa.ff/ffnonbonded.itp"


def _root(name):
    return ET.parse(data_dir("forcefields") / name).getroot()


def _lj(file, atom_type):
    el = _root(file).find(f"./NonbondedForce/Atom[@type='{atom_type}']")
    return float(el.get("sigma")), float(el.get("epsilon"))


def _proper(file, classes):
    for el in _root(file).iterfind("./PeriodicTorsionForce/Proper"):
        got = tuple(el.get(f"class{i}") for i in range(1, 5))
        if got in (classes, classes[::-1]):
            return el
    raise AssertionError(f"no proper torsion {classes} in {file}")


def _opls_from_periodic(el):
    """OPLS V1..V4 (kJ/mol) from the OpenMM periodic terms k_n = V_n/2 (phase 0 odd n, pi even n)."""
    v = [0.0] * 4
    n = 1
    while el.get(f"periodicity{n}") is not None:
        per, phase, k = int(el.get(f"periodicity{n}")), float(el.get(f"phase{n}")), float(el.get(f"k{n}"))
        assert phase == pytest.approx(0.0 if per % 2 else math.pi, abs=1e-7), "OPLS phase convention"
        v[per - 1] += 2 * k
        n += 1
    return v


# (file, atom type, sigma / A, epsilon / kJ/mol, source)
LJ_BLOCKS = [
    ("ions.xml", "clp-OBT", 3.15, 0.83736, f"{ILFF} OBT"),
    ("ions.xml", "clp-F1", 3.118, 0.25540, f"{ILFF} F1"),
    ("ions.xml", "clp-FSI", 3.118, 0.25540, f"{ILFF} FSI"),
    ("ions.xml", "clp-NBT", 3.25, 0.71128, f"{ILFF} NBT"),
    ("ions.xml", "clp-SBT", 3.55, 1.04600, f"{ILFF} SBT"),
    ("ions.xml", "clp-CBT", 3.50, 0.27614, f"{ILFF} CBT"),
    ("ions.xml", "aseimd-Li", 2.126, 0.07648, f"{ILFF} Li (Aqvist)"),
    ("ions.xml", "clp-P", 3.74, 0.83680, f"{ILFF} P (PF6)"),
    ("ions.xml", "clp-FP", 3.12, 0.25520, f"{ILFF} FP (PF6)"),
]
# GROMACS gives nm: (file, type, sigma / nm, epsilon / kJ/mol, source)
LJ_GMX = [
    ("carbonates.xml", "carb-O", 0.296, 0.87864, f"{GMX} opls_771"),
    ("carbonates.xml", "carb-C", 0.375, 0.43932, f"{GMX} opls_772"),
    ("carbonates.xml", "carb-Cr", 0.375, 0.43932, f"{GMX} opls_772"),
    ("carbonates.xml", "carb-OS", 0.300, 0.71128, f"{GMX} opls_773"),
    ("carbonates.xml", "carb-CT", 0.350, 0.276144, f"{GMX} opls_774-776"),
    ("carbonates.xml", "carb-HO", 0.242, 0.06276, f"{GMX} opls_777-779"),
    ("carbonates.xml", "carb-F", 0.294, 0.255224, f"{GMX} opls_956"),
]
# (file, classes, OPLS V1..V4 / kJ/mol, source)
TORSIONS = [
    ("ions.xml", ("FB", "SB", "NB", "SB"), [11.4450, -15.1860, -3.2120, 0.0], f"{ILFF} FSI (corrected)"),
    ("ions.xml", ("SB", "NB", "SB", "CF"), [32.7730, -10.4200, -3.1950, 0.0], f"{ILFF} bistriflamide"),
    ("ions.xml", ("OB", "SB", "CF", "FB"), [0.0, 0.0, 1.4510, 0.0], f"{ILFF} bistriflamide"),
    ("ions.xml", ("NB", "SB", "CF", "FB"), [0.0, 0.0, 1.3220, 0.0], f"{ILFF} bistriflamide"),
    ("ions.xml", ("OB", "SB", "NB", "SB"), [0.0, 0.0, -0.0150, 0.0], f"{ILFF} bistriflamide"),
    ("carbonates.xml", ("OSc", "Ccr", "OSc", "CTc"), [0.0, 20.92, 0.0, 0.0], f"{FFTOOL} CT-OS-C_2-OS"),
    ("carbonates.xml", ("Oc", "Ccr", "OSc", "CTc"), [0.0, 20.92, 0.0, 0.0], f"{FFTOOL} CT-OS-C_2-O_2"),
]
# (file, class1, class2, r0 / A, k / kJ/mol/A^2, source)
BONDS = [
    ("carbonates.xml", "Ccr", "OSc", 1.370, 1790.8, f"{FFTOOL} C_2-OS"),
    ("ions.xml", "FB", "SB", 1.575, 1879.0, f"{ILFF} FSI FB-SB"),
]
# (file, classes, theta0 / deg, k / kJ/mol/rad^2, source)
ANGLES = [
    ("carbonates.xml", ("Oc", "Ccr", "OSc"), 125.6, 694.5, f"{FFTOOL} O_2-C_2-OS"),
    ("carbonates.xml", ("OSc", "Ccr", "OSc"), 108.8, 694.5, f"{FFTOOL} OS-C_2-OS"),
    ("ions.xml", ("FB", "SB", "OB"), 104.1, 1077.0, f"{ILFF} FSI"),
    ("ions.xml", ("FB", "SB", "NB"), 103.0, 902.0, f"{ILFF} FSI"),
]


@pytest.mark.parametrize("file, atom_type, sigma_A, eps, source", LJ_BLOCKS)
def test_lj_against_ilff(file, atom_type, sigma_A, eps, source):
    sig_nm, e = _lj(file, atom_type)
    assert sig_nm == pytest.approx(0.1 * sigma_A, abs=5e-7), source
    assert e == pytest.approx(eps, abs=5e-6), source


@pytest.mark.parametrize("file, atom_type, sigma_nm, eps, source", LJ_GMX)
def test_lj_against_gromacs(file, atom_type, sigma_nm, eps, source):
    sig, e = _lj(file, atom_type)
    assert sig == pytest.approx(sigma_nm, abs=5e-7), source
    assert e == pytest.approx(eps, abs=5e-5), source


@pytest.mark.parametrize("file, classes, v_kj, source", TORSIONS)
def test_torsions_against_source(file, classes, v_kj, source):
    assert _opls_from_periodic(_proper(file, classes)) == pytest.approx(v_kj, abs=5e-6), source


def test_fsi_torsion_is_not_the_superseded_one():
    """il.ff 2016/02/03 and 2017/12/06 had V1..V4 = 13.4514, -12.3373, -8.4874, -2.8654 (changed since)."""
    v = _opls_from_periodic(_proper("ions.xml", ("FB", "SB", "NB", "SB")))
    assert v[0] != pytest.approx(13.4514) and v[3] == 0.0


@pytest.mark.parametrize("file, c1, c2, r0_A, k_A, source", BONDS)
def test_bonds_against_source(file, c1, c2, r0_A, k_A, source):
    el = next(b for b in _root(file).iterfind("./HarmonicBondForce/Bond")
              if {b.get("class1"), b.get("class2")} == {c1, c2})
    assert float(el.get("length")) == pytest.approx(0.1 * r0_A, abs=5e-7), source
    assert float(el.get("k")) == pytest.approx(100.0 * k_A, rel=1e-6), source


@pytest.mark.parametrize("file, classes, theta_deg, k, source", ANGLES)
def test_angles_against_source(file, classes, theta_deg, k, source):
    el = next(a for a in _root(file).iterfind("./HarmonicAngleForce/Angle")
              if tuple(a.get(f"class{i}") for i in (1, 2, 3)) in (classes, classes[::-1]))
    assert float(el.get("angle")) == pytest.approx(math.radians(theta_deg), abs=1e-7), source
    assert float(el.get("k")) == pytest.approx(k, rel=1e-6), source


def test_cyclic_carbonate_angles_close_the_plane():
    """125.6 + 125.6 + 108.8 = 360: the source set is planar at the carbonyl C, like the improper demands."""
    assert 2 * 125.6 + 108.8 == pytest.approx(360.0)


def test_readme_table_quotes_the_source_values():
    text = (data_dir("forcefields") / "README.md").read_text().replace("\u2212", "-")  # typographic minus
    for needle in ("2019/06/19", "11.4450", "-15.1860", "-3.2120", "3.118", "0.83736", "0.25540",
                   "1.370", "125.6", "108.8", "Silva", "THEOCHEM 806, 23 (2007)", "derived (rule:"):
        assert needle in text, needle
