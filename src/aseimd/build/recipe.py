"""Electrolyte recipes as people write them, parsed into a frozen :class:`Recipe`.

Accepted forms (case-insensitive except the concentration unit ``M`` vs ``m``)::

    1.0 M LiPF6 in EC:DMC 1:1 v/v          molarity, volume ratio
    1.2 m LiTFSI in PC                     molality, one solvent
    1 M LiPF6 in EC:EMC 3:7 w/w            mass ratio
    1 M LiPF6 in EC/DMC (1:1 mol/mol)      mole ratio; '/' separates solvents too
    0.8 M LiPF6 + 0.2 M LiFSI in EC:DMC 1:1 v/v      more than one salt
    1 M LiPF6 in EC:DEC 1:1 v/v + 5 wt% FEC         additives: wt%, vol% or mol%
    EC:DMC 1:1 v/v                          neat solvent (no salt)

The grammar is ``[SALT {+ SALT} in] SOLVENTS [RATIO BASIS] {+ ADDITIVE}`` with
``SALT = <number> <M|mol/L|m|mol/kg> <salt>``, ``SOLVENTS = A:B:...``,
``RATIO = r1:r2:...`` and ``ADDITIVE = <number> <wt%|vol%|mol%> <species>``.
What the amounts mean (the reference quantity of each percentage) is defined in
:mod:`aseimd.build.composition` and docs/electrolyte_recipes.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from aseimd.errors import SpecError
from aseimd.species import SALTS, all_species

#: Salt concentration units: canonical symbol -> meaning.
SALT_UNITS = {"M": "mol per litre of solution", "m": "mol per kg of solvent"}
#: Solvent ratio bases: canonical symbol -> meaning.
RATIO_BASES = {"v/v": "volume", "w/w": "mass", "mol/mol": "mole"}
#: Additive units: canonical symbol -> meaning.
ADDITIVE_UNITS = {
    "wt%": "mass percent of the whole electrolyte",
    "vol%": "volume percent of the liquid (solvents + additives)",
    "mol%": "mole percent of the neutral molecules (solvents + additives)",
}

_SALT_UNIT_ALIASES = {"M": "M", "mol/L": "M", "mol/l": "M", "m": "m", "mol/kg": "m"}
_BASIS_ALIASES = {
    "v/v": "v/v", "vol": "v/v", "vol.": "v/v", "volume": "v/v", "by volume": "v/v", "v:v": "v/v",
    "w/w": "w/w", "wt": "w/w", "wt.": "w/w", "wt/wt": "w/w", "weight": "w/w", "by weight": "w/w",
    "mass": "w/w", "by mass": "w/w", "m/m": "w/w", "w:w": "w/w",
    "mol/mol": "mol/mol", "mol": "mol/mol", "mole": "mol/mol", "by mole": "mol/mol",
    "by mol": "mol/mol", "molar": "mol/mol", "n/n": "mol/mol",
}
_ADDITIVE_UNIT_ALIASES = {
    "wt%": "wt%", "wt.%": "wt%", "w%": "wt%", "w/w%": "wt%", "%wt": "wt%", "% w/w": "wt%",
    "vol%": "vol%", "v%": "vol%", "v/v%": "vol%", "%vol": "vol%", "% v/v": "vol%",
    "mol%": "mol%", "%mol": "mol%", "% mol/mol": "mol%",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SALT_RE = re.compile(rf"^\s*({_NUMBER})\s*(mol/[lLkKgG]+|M|m)\s+(\S+)\s*$")
_ADDITIVE_RE = re.compile(rf"^\s*({_NUMBER})\s*(%\s*\S+|\S*%)\s+(\S+)\s*$")
_IN_RE = re.compile(r"\s+in\s+", re.IGNORECASE)
_PLUS_RE = re.compile(r"\s*\+\s*")


def _fmt(x: float) -> str:
    """Shortest faithful decimal form of a number (``1.0 -> '1'``, ``0.25 -> '0.25'``)."""
    return format(x, ".10g")


def _solvent_names() -> dict[str, str]:
    """Map lower-case names/aliases/residues of solvent species to the canonical name."""
    table: dict[str, str] = {}
    for sp in all_species():
        if sp.kind == "solvent":
            for key in (sp.name, sp.residue, *sp.aliases):
                table[key.lower()] = sp.name
    return table


def _canonical_solvent(name: str, role: str) -> str:
    table = _solvent_names()
    try:
        return table[name.strip().lower()]
    except KeyError:
        allowed = ", ".join(sp.name for sp in all_species() if sp.kind == "solvent")
        raise SpecError(f"unknown {role} {name!r}; allowed: {allowed}") from None


def _canonical_salt(name: str) -> str:
    for salt in SALTS:
        if salt.lower() == name.strip().lower():
            return salt
    raise SpecError(f"unknown salt {name!r}; allowed: {', '.join(SALTS)}")


def _positive(value: float, what: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise SpecError(f"{what} must be a positive number, got {_fmt(value)}")
    return float(value)


@dataclass(frozen=True)
class SaltAmount:
    """One salt of a recipe.

    Attributes
    ----------
    salt : str
        Canonical salt name (a key of :data:`aseimd.species.SALTS`).
    concentration : float
        Requested concentration, in ``unit``.
    unit : str
        ``"M"`` (mol/L of solution) or ``"m"`` (mol/kg of solvent).
    """

    salt: str
    concentration: float
    unit: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "salt", _canonical_salt(self.salt))
        if self.unit not in SALT_UNITS:
            raise SpecError(f"unknown concentration unit {self.unit!r}; allowed: M (mol/L), m (mol/kg)")
        _positive(self.concentration, f"concentration of {self.salt}")

    def __str__(self) -> str:
        return f"{_fmt(self.concentration)} {self.unit} {self.salt}"


@dataclass(frozen=True)
class AdditiveAmount:
    """One additive of a recipe (a neutral species added on top of the solvent blend).

    Attributes
    ----------
    species : str
        Canonical species name (a solvent-kind species, e.g. ``"FEC"``).
    amount : float
        Requested amount in percent (0 < amount < 100).
    unit : str
        ``"wt%"``, ``"vol%"`` or ``"mol%"`` (see :data:`ADDITIVE_UNITS`).
    """

    species: str
    amount: float
    unit: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", _canonical_solvent(self.species, "additive"))
        if self.unit not in ADDITIVE_UNITS:
            raise SpecError(f"unknown additive unit {self.unit!r}; allowed: {', '.join(ADDITIVE_UNITS)}")
        _positive(self.amount, f"amount of additive {self.species}")
        if self.amount >= 100:
            raise SpecError(f"amount of additive {self.species} must be below 100 {self.unit}, "
                            f"got {_fmt(self.amount)}")

    def __str__(self) -> str:
        return f"{_fmt(self.amount)} {self.unit} {self.species}"


@dataclass(frozen=True)
class Recipe:
    """A liquid electrolyte: salts dissolved in a solvent blend, plus additives.

    Attributes
    ----------
    solvents : tuple of str
        Canonical solvent names, in the order written.
    ratio : tuple of float
        Solvent ratio, one positive number per solvent (``(1.0,)`` for one solvent).
    ratio_basis : str
        ``"v/v"``, ``"w/w"`` or ``"mol/mol"`` (see :data:`RATIO_BASES`).
    salts : tuple of SaltAmount
        Dissolved salts (empty for a neat solvent); all in the same unit.
    additives : tuple of AdditiveAmount
        Additives, each a percentage of the whole (see :data:`ADDITIVE_UNITS`).

    Examples
    --------
    >>> r = Recipe.parse("1.0 M LiPF6 in ec/dmc (1:1 by volume)")
    >>> str(r)
    '1 M LiPF6 in EC:DMC 1:1 v/v'
    >>> Recipe.parse(str(r)) == r
    True
    """

    solvents: tuple[str, ...]
    ratio: tuple[float, ...] = (1.0,)
    ratio_basis: str = "v/v"
    salts: tuple[SaltAmount, ...] = ()
    additives: tuple[AdditiveAmount, ...] = ()

    def __post_init__(self) -> None:
        solvents = tuple(_canonical_solvent(s, "solvent") for s in self.solvents)
        object.__setattr__(self, "solvents", solvents)
        object.__setattr__(self, "ratio", tuple(float(r) for r in self.ratio))
        object.__setattr__(self, "salts", tuple(self.salts))
        object.__setattr__(self, "additives", tuple(self.additives))
        if not solvents:
            raise SpecError("a recipe needs at least one solvent, e.g. '1 M LiPF6 in EC:DMC 1:1 v/v'")
        _no_duplicates(solvents, "solvent")
        _no_duplicates(tuple(s.salt for s in self.salts), "salt")
        _no_duplicates(tuple(a.species for a in self.additives), "additive")
        for add in self.additives:
            if add.species in solvents:
                raise SpecError(f"additive {add.species!r} is also a solvent of {':'.join(solvents)}; "
                                "list it in the solvent ratio instead")
        if len(self.ratio) != len(solvents):
            raise SpecError(f"ratio {':'.join(_fmt(r) for r in self.ratio)!r} has {len(self.ratio)} "
                            f"part(s) but there are {len(solvents)} solvent(s) ({':'.join(solvents)})")
        for r in self.ratio:
            _positive(r, "every part of the solvent ratio")
        if self.ratio_basis not in RATIO_BASES:
            raise SpecError(f"unknown ratio basis {self.ratio_basis!r}; allowed: {', '.join(RATIO_BASES)}")
        units = {s.unit for s in self.salts}
        if len(units) > 1:
            raise SpecError(f"salts mix concentration units ({', '.join(sorted(units))}); "
                            "give every salt in M or every salt in m")

    @classmethod
    def parse(cls, text: str) -> "Recipe":
        """Parse a recipe string (see the module docstring for the accepted forms)."""
        return parse_recipe(text)

    @property
    def salt_unit(self) -> str | None:
        """``"M"``, ``"m"``, or None for a neat solvent."""
        return self.salts[0].unit if self.salts else None

    def __str__(self) -> str:
        solvent = ":".join(self.solvents)
        if len(self.solvents) > 1:
            solvent += f" {':'.join(_fmt(r) for r in self.ratio)} {self.ratio_basis}"
        text = solvent
        if self.salts:
            text = " + ".join(str(s) for s in self.salts) + " in " + solvent
        for add in self.additives:
            text += f" + {add}"
        return text


def _no_duplicates(names: tuple[str, ...], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SpecError(f"{what} {name!r} is listed twice")
        seen.add(name)


def parse_recipe(text: str) -> Recipe:
    """Parse an electrolyte recipe such as ``"1.0 M LiPF6 in EC:DMC 1:1 v/v + 5 wt% FEC"``.

    Parameters
    ----------
    text : str
        The recipe (see the module docstring for the grammar).

    Returns
    -------
    Recipe

    Raises
    ------
    SpecError
        On any malformed part; the message names the part and what is allowed.
    """
    if not isinstance(text, str) or not text.strip():
        raise SpecError("empty recipe; expected e.g. '1.0 M LiPF6 in EC:DMC 1:1 v/v'")
    parts = _IN_RE.split(text.strip())
    if len(parts) > 2:
        raise SpecError(f"recipe {text!r} has more than one ' in '; expected '<salts> in <solvents>'")
    salts: tuple[SaltAmount, ...] = ()
    if len(parts) == 2:
        salts = tuple(_parse_salt(chunk) for chunk in _PLUS_RE.split(parts[0]))
    rest = _PLUS_RE.split(parts[-1]) if len(parts) == 2 else _split_neat(parts[-1])
    solvents, ratio, basis = _parse_solvents(rest[0])
    additives = tuple(_parse_additive(chunk) for chunk in rest[1:])
    return Recipe(solvents=solvents, ratio=ratio, ratio_basis=basis, salts=salts, additives=additives)


def _split_neat(text: str) -> list[str]:
    """Split a recipe without ' in ' into the solvent part and additive parts."""
    if re.match(rf"^\s*{_NUMBER}\s*(M|m|mol/)", text):
        raise SpecError(f"recipe {text!r} names a salt concentration but no ' in <solvents>' part")
    return _PLUS_RE.split(text)


def _parse_salt(chunk: str) -> SaltAmount:
    match = _SALT_RE.match(chunk)
    if not match:
        raise SpecError(f"cannot read salt {chunk.strip()!r}; expected '<number> <unit> <salt>' "
                        f"with unit M, mol/L, m or mol/kg and salt one of {', '.join(SALTS)}")
    value, unit, name = match.groups()
    if unit not in _SALT_UNIT_ALIASES:
        raise SpecError(f"unknown concentration unit {unit!r}; allowed: M, mol/L, m, mol/kg")
    return SaltAmount(salt=name, concentration=float(value), unit=_SALT_UNIT_ALIASES[unit])


def _parse_additive(chunk: str) -> AdditiveAmount:
    match = _ADDITIVE_RE.match(chunk)
    if not match:
        raise SpecError(f"cannot read additive {chunk.strip()!r}; expected '<number> <unit> <species>' "
                        f"with unit one of {', '.join(ADDITIVE_UNITS)}")
    value, unit, name = match.groups()
    key = " ".join(unit.lower().split())
    if key not in _ADDITIVE_UNIT_ALIASES:
        raise SpecError(f"unknown additive unit {unit!r}; allowed: {', '.join(ADDITIVE_UNITS)}")
    return AdditiveAmount(species=name, amount=float(value), unit=_ADDITIVE_UNIT_ALIASES[key])


def _parse_solvents(chunk: str) -> tuple[tuple[str, ...], tuple[float, ...], str]:
    tokens = chunk.replace("(", " ").replace(")", " ").replace(",", " ").split()
    if not tokens:
        raise SpecError("recipe has no solvent after ' in '; expected e.g. 'EC:DMC 1:1 v/v'")
    names = tuple(n for n in re.split(r"[:/]", tokens[0]) if n)
    rest = tokens[1:]
    if not rest:
        if len(names) > 1:
            raise SpecError(f"solvents {tokens[0]!r} need a ratio and basis, e.g. "
                            f"'{':'.join(names)} {':'.join('1' for _ in names)} v/v'")
        return names, (1.0,), "v/v"
    ratio_text = rest[0]
    try:
        ratio = tuple(float(x) for x in ratio_text.split(":"))
    except ValueError:
        raise SpecError(f"cannot read solvent ratio {ratio_text!r}; expected numbers separated by ':', "
                        "e.g. '1:1' or '3:7'") from None
    basis_text = " ".join(rest[1:]).lower()
    if not basis_text:
        raise SpecError(f"solvent ratio {ratio_text!r} needs a basis; allowed: {', '.join(RATIO_BASES)}")
    if basis_text not in _BASIS_ALIASES:
        raise SpecError(f"unknown ratio basis {' '.join(rest[1:])!r}; allowed: {', '.join(RATIO_BASES)}")
    return names, ratio, _BASIS_ALIASES[basis_text]
