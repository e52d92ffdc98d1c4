"""The interface spec: a validated, frozen description of a ``Li slab | polymer | electrolyte`` cell.

A spec is YAML (``systems/*.yaml``) or a mapping::

    name: li-peo-lipf6                     # optional label
    slab: {face: "100", layers: 6, lateral_nm: [3.5, 3.5]}   # or repeats: [nx, ny]
    polymer: {name: PEO, thickness_nm: 2.0, n_repeat: 20}     # null / omitted: bare-Li control
    electrolyte: {recipe: "1.0 M LiPF6 in EC:DMC 1:1 v/v", thickness_nm: 4.0}
    cutoff_nm: 1.2
    charge_scale: 0.8
    seed: 0

Every key is documented in docs/interface.md. Unknown (misspelled) keys are
rejected with a one-line :class:`~aseimd.errors.SpecError` naming the key and
listing the allowed ones, as for protocols (:mod:`aseimd.simulate.protocol`);
so are values out of range, including a lateral box (after rounding to whole
lattice repeats) shorter than twice the cut-off.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from aseimd.errors import SpecError

#: Thinnest electrolyte layer accepted, nm (a few molecular diameters; thinner is no liquid).
MIN_ELECTROLYTE_NM = 1.5
#: Default distance between the outermost atoms of adjacent layers, nm.
DEFAULT_GAP_NM = 0.25

_TOP_KEYS = ("name", "slab", "polymer", "electrolyte", "cutoff_nm", "charge_scale", "seed", "gap_nm",
             "lj_long_range_correction", "temperature_K")
_SLAB_KEYS = ("face", "layers", "lateral_nm", "repeats")
_POLYMER_KEYS = ("name", "thickness_nm", "n_repeat", "molar_mass_g_per_mol", "n_chains", "tacticity",
                 "ew_g_per_mol", "end_groups", "density_g_per_cm3", "salt", "eo_per_li", "an_per_li")
_ELECTROLYTE_KEYS = ("recipe", "thickness_nm")


def _reject_unknown(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a mapping with keys {', '.join(allowed)}, got {data!r}")
    for key in data:
        if key not in allowed:
            raise SpecError(f"unknown key {key!r} in {where}; allowed keys: {', '.join(allowed)}")


def _number(where: str, value: Any, *, minimum: float | None = None, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where} must be a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise SpecError(f"{where} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


def _integer(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _pair(where: str, value: Any, kind) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SpecError(f"{where} must be a list of two values [x, y], got {value!r}")
    return tuple(kind(f"{where}[{i}]", v) for i, v in enumerate(value))


@dataclass(frozen=True)
class SlabSpec:
    """The Li slab: face, atomic layers and lateral size (exactly one of ``lateral_nm`` and ``repeats``)."""

    face: str = "100"
    layers: int = 6
    lateral_nm: tuple[float, float] | None = None
    repeats: tuple[int, int] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SlabSpec:
        from aseimd.build.slab import FACES, MIN_LAYERS

        _reject_unknown("slab", data, _SLAB_KEYS)
        face = str(data.get("face", cls.face))
        if face not in FACES:
            raise SpecError(f"slab.face {data.get('face')!r} not allowed; allowed: {', '.join(FACES)}")
        layers = _integer("slab.layers", data.get("layers", cls.layers), MIN_LAYERS)
        lateral, repeats = data.get("lateral_nm"), data.get("repeats")
        if (lateral is None) == (repeats is None):
            raise SpecError("slab needs exactly one of lateral_nm: [x, y] (nm) and repeats: [nx, ny]")
        if lateral is not None:
            lateral = _pair("slab.lateral_nm", lateral, lambda w, v: _number(w, v, minimum=0.0))
        else:
            repeats = _pair("slab.repeats", repeats, lambda w, v: _integer(w, v, 1))
        return cls(face=face, layers=layers, lateral_nm=lateral, repeats=repeats)

    def resolved_repeats(self) -> tuple[int, int]:
        """Lateral repeats ``(nx, ny)`` (``lateral_nm`` rounded to whole repeats)."""
        from aseimd.build.slab import repeats_for

        return tuple(self.repeats) if self.repeats is not None else repeats_for(self.face, self.lateral_nm)

    def box_xy_nm(self) -> tuple[float, float]:
        """Lateral box edges of the cell, nm (whole lattice repeats)."""
        from aseimd.build.slab import slab_geometry

        g = slab_geometry(self.face)
        nx, ny = self.resolved_repeats()
        return nx * g.period_nm[0], ny * g.period_nm[1]


@dataclass(frozen=True)
class PolymerLayerSpec:
    """One polymer coating (the same on both faces of the slab); options of ``PolymerSpec``."""

    name: str
    thickness_nm: float
    n_repeat: int | None = None
    molar_mass_g_per_mol: float | None = None
    n_chains: int | None = None
    tacticity: str = "atactic"
    ew_g_per_mol: float = 1100.0
    end_groups: Any = None
    density_g_per_cm3: float | None = None
    salt: str | None = None
    eo_per_li: float | None = None
    an_per_li: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolymerLayerSpec:
        _reject_unknown("polymer", data, _POLYMER_KEYS)
        if "name" not in data or not isinstance(data["name"], str) or not data["name"].strip():
            raise SpecError("polymer.name is required (e.g. PEO, PAN, PDMS, LiNafion)")
        if "thickness_nm" not in data:
            raise SpecError("polymer.thickness_nm is required (layer thickness in nm)")
        from aseimd.build.polymer import MIN_LAYER_NM

        thickness = _number("polymer.thickness_nm", data["thickness_nm"], minimum=MIN_LAYER_NM, strict=False)
        n_repeat = data.get("n_repeat")
        molar_mass = data.get("molar_mass_g_per_mol")
        n_chains = data.get("n_chains")
        density = data.get("density_g_per_cm3")
        return cls(
            name=data["name"].strip(), thickness_nm=thickness,
            n_repeat=None if n_repeat is None else _integer("polymer.n_repeat", n_repeat, 1),
            molar_mass_g_per_mol=None if molar_mass is None else _number("polymer.molar_mass_g_per_mol",
                                                                         molar_mass, minimum=0.0),
            n_chains=None if n_chains is None else _integer("polymer.n_chains", n_chains, 1),
            tacticity=str(data.get("tacticity", cls.tacticity)),
            ew_g_per_mol=_number("polymer.ew_g_per_mol", data.get("ew_g_per_mol", cls.ew_g_per_mol), minimum=0.0),
            end_groups=data.get("end_groups"),
            density_g_per_cm3=None if density is None else _number("polymer.density_g_per_cm3", density,
                                                                   minimum=0.0),
            salt=data.get("salt"), eo_per_li=data.get("eo_per_li"), an_per_li=data.get("an_per_li"),
        )

    def layer_salt(self):
        """The validated salt of the layer (:class:`aseimd.build.layer_salt.LayerSalt`) or None.

        Raises
        ------
        SpecError
            A ratio without a salt, an unknown salt, a salt in a polymer that cannot
            host one (PDMS, Li-Nafion), a ratio key of another polymer, an impossible ratio.
        """
        from aseimd.build.layer_salt import validate_layer_salt
        from aseimd.species import get_polymer

        return validate_layer_salt(get_polymer(self.name).name, self.salt,
                                   {"eo_per_li": self.eo_per_li, "an_per_li": self.an_per_li})

    def polymer_spec(self):
        """The polymer builder's ``PolymerSpec`` (validates name, length, tacticity, EW).

        Raises
        ------
        SpecError
            Unknown polymer, bad length, tacticity or EW.
        """
        from aseimd.build.polymer import PolymerSpec

        return PolymerSpec(self.name, n_repeat=self.n_repeat, molar_mass_g_per_mol=self.molar_mass_g_per_mol,
                           n_chains=self.n_chains, tacticity=self.tacticity, ew_g_per_mol=self.ew_g_per_mol,
                           end_groups=self.end_groups)


@dataclass(frozen=True)
class ElectrolyteLayerSpec:
    """The liquid electrolyte layer: a recipe of the bulk builder and its thickness at estimated density."""

    recipe: str
    thickness_nm: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ElectrolyteLayerSpec:
        from aseimd.build.recipe import Recipe

        _reject_unknown("electrolyte", data, _ELECTROLYTE_KEYS)
        if not isinstance(data.get("recipe"), str):
            raise SpecError('electrolyte.recipe is required, e.g. "1.0 M LiPF6 in EC:DMC 1:1 v/v"')
        Recipe.parse(data["recipe"])  # raises SpecError with the parser's message
        if "thickness_nm" not in data:
            raise SpecError("electrolyte.thickness_nm is required (layer thickness in nm)")
        thickness = _number("electrolyte.thickness_nm", data["thickness_nm"], minimum=MIN_ELECTROLYTE_NM,
                            strict=False)
        return cls(recipe=data["recipe"], thickness_nm=thickness)


@dataclass(frozen=True)
class InterfaceSpec:
    """A validated interface cell spec (see the module docstring and docs/interface.md).

    Attributes
    ----------
    slab : SlabSpec
    electrolyte : ElectrolyteLayerSpec
    polymer : PolymerLayerSpec or None
        None: the bare ``Li | electrolyte`` control.
    name : str or None
    cutoff_nm : float
        Non-bonded cut-off of the built System, nm (default 1.2: longer than the
        bulk 1.0 nm because the LJ long-range correction is off).
    charge_scale : float
        Ion charge scale (default 0.8).
    seed : int
        Seed of every random choice (polymer growth, packing).
    gap_nm : float
        Distance between the outermost atoms of adjacent layers along z, nm.
    lj_long_range_correction : bool
        Isotropic LJ long-range correction (default false: wrong across a slab).
    temperature_K : float
        Temperature the polymer layers are grown for, K.
    """

    slab: SlabSpec
    electrolyte: ElectrolyteLayerSpec
    polymer: PolymerLayerSpec | None = None
    name: str | None = None
    cutoff_nm: float = 1.2
    charge_scale: float = 0.8
    seed: int = 0
    gap_nm: float = DEFAULT_GAP_NM
    lj_long_range_correction: bool = False
    temperature_K: float = 298.15

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InterfaceSpec:
        """Validate a mapping (see :func:`load_interface_spec`)."""
        _reject_unknown("interface spec", data, _TOP_KEYS)
        if "slab" not in data:
            raise SpecError("interface spec needs a 'slab' block, e.g. slab: {face: '100', layers: 6, "
                            "lateral_nm: [3.5, 3.5]}")
        if "electrolyte" not in data:
            raise SpecError("interface spec needs an 'electrolyte' block, e.g. electrolyte: "
                            "{recipe: '1.0 M LiPF6 in EC:DMC 1:1 v/v', thickness_nm: 4.0}")
        slab = SlabSpec.from_dict(data["slab"])
        electrolyte = ElectrolyteLayerSpec.from_dict(data["electrolyte"])
        polymer = None if data.get("polymer") is None else PolymerLayerSpec.from_dict(data["polymer"])
        if polymer is not None:
            polymer.polymer_spec()  # the polymer builder's own checks (name, length, tacticity, EW)
            polymer.layer_salt()  # salt, EO:Li (build/layer_salt.py)
        cutoff = _number("cutoff_nm", data.get("cutoff_nm", cls.cutoff_nm), minimum=0.0)
        charge_scale = _number("charge_scale", data.get("charge_scale", cls.charge_scale), minimum=0.0)
        if charge_scale > 1.0:
            raise SpecError(f"charge_scale must be in (0, 1], got {charge_scale!r}")
        seed = _integer("seed", data.get("seed", cls.seed), 0)
        gap = _number("gap_nm", data.get("gap_nm", cls.gap_nm), minimum=0.1, strict=False)
        lrc = data.get("lj_long_range_correction", cls.lj_long_range_correction)
        if not isinstance(lrc, bool):
            raise SpecError(f"lj_long_range_correction must be true or false, got {lrc!r}")
        temperature = _number("temperature_K", data.get("temperature_K", cls.temperature_K), minimum=0.0)
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise SpecError(f"name must be a string, got {name!r}")
        spec = cls(slab=slab, electrolyte=electrolyte, polymer=polymer, name=name, cutoff_nm=cutoff,
                   charge_scale=charge_scale, seed=seed, gap_nm=gap, lj_long_range_correction=lrc,
                   temperature_K=temperature)
        lx, ly = slab.box_xy_nm()
        if min(lx, ly) < 2.0 * cutoff:
            from aseimd.build.slab import slab_geometry

            g = slab_geometry(slab.face)
            need = [math.ceil(2.0 * cutoff / (p * m) - 1e-9) * p * m
                    for p, m in zip(g.period_nm, (1, g.y_multiple))]
            raise SpecError(f"lateral box {lx:.3f} x {ly:.3f} nm (whole Li({slab.face}) repeats) is smaller than "
                            f"twice the cut-off ({2 * cutoff:g} nm); use slab.lateral_nm >= "
                            f"[{need[0]:.3f}, {need[1]:.3f}] or a shorter cutoff_nm")
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The spec with every default resolved, JSON/YAML-ready (goes into build.json)."""
        out = asdict(self)
        for block in ("slab",):
            for key in ("lateral_nm", "repeats"):
                if out[block][key] is not None:
                    out[block][key] = list(out[block][key])
        return out


def load_interface_spec(source: str | os.PathLike | Mapping[str, Any]) -> InterfaceSpec:
    """Load and validate an interface spec.

    Parameters
    ----------
    source : path-like, str or mapping
        A YAML file, the name of a spec shipped in ``systems/`` (``"li-peo-lipf6"``
        or ``"li-peo-lipf6.yaml"``), or an already-parsed mapping.

    Returns
    -------
    InterfaceSpec

    Raises
    ------
    SpecError
        Missing file, bad YAML, unknown key, bad value.
    """
    if isinstance(source, Mapping):
        return InterfaceSpec.from_dict(source)
    import yaml

    path = Path(source)
    if not path.is_file():
        from aseimd.resources import data_dir

        name = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
        shipped = data_dir("systems") / name
        if str(path) != path.name or not shipped.is_file():
            available = sorted(p.stem for p in data_dir("systems").glob("*.yaml"))
            raise SpecError(f"interface spec {str(source)!r} not found; give a YAML file or one of the "
                            f"shipped specs: {', '.join(available) or 'none'}")
        path = shipped
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, Mapping):
        raise SpecError(f"{str(path)!r} must hold a mapping (slab:, electrolyte:, ...), got {type(data).__name__}")
    return InterfaceSpec.from_dict(data)
