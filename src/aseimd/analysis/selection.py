"""A small evaluator for the common part of mdtraj's selection language, on an :class:`AtomTable`.

The selections aseimd's commands, defaults and docs use (``resname LI``,
``resname EC and name O1``, ``resname PEH PEO PET and element O``,
``(resname PF6 and element F) or (resname TFS and element O)``, ``index 0 to 9``)
are evaluated here with numpy on the atom table, so that analysing a DCD with
a PDB topology does not import mdtraj (0.2–0.4 s). :func:`select` returns
``None`` for anything it does not understand, and the caller hands the string
to mdtraj, which then gives its own result or its own error: this evaluator
never rejects a selection.

Understood (with mdtraj's meaning, ``mdtraj.core.selection``):

- ``all`` / ``everything``, ``none`` / ``nothing``;
- ``name``, ``resname`` / ``resn``, ``element`` / ``symbol`` / ``type``
  followed by one or more bare words (a letter, then letters and digits):
  equal to one of them;
- ``index``, ``resid`` / ``resi`` (0-based residue index), ``residue`` /
  ``resSeq`` (residue number of the file), ``chainid`` (0-based chain index)
  followed by one or more non-negative integers, or ``A to B`` (inclusive);
- ``not`` / ``!``, ``and`` / ``&&``, ``or`` / ``||`` and parentheses (one
  level deep, :data:`MAX_DEPTH`), with mdtraj's precedence (not, then and,
  then or).

Everything else (quoted strings, numbers as names, comparisons such as
``mass > 2``, regular expressions, ``protein``, ``water``, ``within``, the
bare words ``True`` / ``False`` / ``None`` that mdtraj reads as constants, a
keyword used as a value, ...) goes to mdtraj. ``tests/test_atom_table.py``
checks for many strings that the indices equal mdtraj's.
"""

from __future__ import annotations

import re

import numpy as np

from aseimd.analysis.atom_table import AtomTable

_STRING_FIELDS = {"name": "name", "resname": "resname", "resn": "resname", "element": "symbol",
                  "symbol": "symbol", "type": "symbol"}
_INT_FIELDS = {"index": "index", "resid": "resid", "resi": "resid", "residue": "resseq", "resSeq": "resseq",
               "chainid": "chainid"}
_CONSTANTS = {"all": True, "everything": True, "none": False, "nothing": False}
#: Words mdtraj gives another meaning (operators, keywords, constants): never a value here.
_RESERVED = (set(_STRING_FIELDS) | set(_INT_FIELDS) | set(_CONSTANTS)
             | {"and", "or", "not", "to", "lt", "le", "eq", "ne", "ge", "gt", "True", "False", "None",
                "backbone", "is_backbone", "sidechain", "is_sidechain", "protein", "is_protein", "code", "rescode",
                "resc", "nucleic", "is_nucleic", "water", "waters", "is_water", "n_bonds", "segment_id",
                "segname", "mass"})
#: Deepest nesting of parentheses evaluated here. mdtraj 1.11's parser (16 precedence levels in pyparsing)
#: runs out of Python's recursion limit from two or three levels on, depending on the caller's stack, and
#: the selection is then reported as invalid; deeper strings go to mdtraj so that a selection means the
#: same whatever the topology format.
MAX_DEPTH = 1
_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[A-Za-z][A-Za-z0-9]*|[0-9]+|\S)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")


def _plain_int(token: str) -> bool:
    """A decimal integer as Python reads it (mdtraj evaluates literals with ``ast``: no leading zeros)."""
    return token.isdigit() and (token == "0" or not token.startswith("0"))


class _Unsupported(Exception):
    """Not in the subset: mdtraj decides."""


def select(table: AtomTable, selection: str) -> np.ndarray | None:
    """Ascending atom indices of ``selection``, or ``None`` where mdtraj must evaluate it."""
    tokens = _tokens(selection)
    if tokens is None or not tokens:
        return None
    parser = _Parser(tokens, table)
    try:
        mask = parser.expression()
        if parser.pos != len(tokens):
            return None
    except _Unsupported:
        return None
    return np.flatnonzero(mask)


def _tokens(selection: str) -> list[str] | None:
    out, pos = [], 0
    text = selection.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        tok = m.group(1)
        if tok == "not" and not text[m.end():m.end() + 1].isspace():
            return None  # mdtraj's operator is "not " with its space: "not(" is not it
        out.append(tok)
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens; every node is a boolean mask over the atoms."""

    def __init__(self, tokens: list[str], table: AtomTable) -> None:
        self.tokens, self.pos, self.table = tokens, 0, table
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _Unsupported
        self.pos += 1
        return tok

    def expression(self) -> np.ndarray:  # or-level
        mask = self.conjunction()
        while self.peek() in ("or", "||"):
            self.take()
            mask = mask | self.conjunction()
        return mask

    def conjunction(self) -> np.ndarray:
        mask = self.negation()
        while self.peek() in ("and", "&&"):
            self.take()
            mask = mask & self.negation()
        return mask

    def negation(self) -> np.ndarray:
        if self.peek() == "not":  # mdtraj's lower unary level: its operand may start with "!" or "not"
            self.take()
            return ~self.negation()
        return self.bang()

    def bang(self) -> np.ndarray:
        if self.peek() == "!":  # mdtraj's higher unary level: "! not x" does not parse there
            self.take()
            return ~self.bang()
        return self.primary()

    def primary(self) -> np.ndarray:
        tok = self.take()
        if tok == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Unsupported
            mask = self.expression()
            self.depth -= 1
            if self.take() != ")":
                raise _Unsupported
            return mask
        if tok in _CONSTANTS:
            return np.full(self.table.n_atoms, _CONSTANTS[tok])
        if tok in _STRING_FIELDS:
            values = self._values(lambda v: _WORD.match(v) is not None)
            return self._string_mask(_STRING_FIELDS[tok], values)
        if tok in _INT_FIELDS:
            field = self._int_field(_INT_FIELDS[tok])
            values = self._values(_plain_int)
            if self.peek() == "to":
                if len(values) != 1:
                    raise _Unsupported
                self.take()
                hi = self.take()
                if not _plain_int(hi):
                    raise _Unsupported
                return (int(values[0]) <= field) & (field <= int(hi))
            return np.isin(field, [int(v) for v in values])
        raise _Unsupported

    def _values(self, valid) -> list[str]:
        values = []
        while self.peek() is not None and self.peek() not in _RESERVED and self.peek() not in ("(", ")", "!",
                                                                                               "&&", "||"):
            tok = self.take()
            if not valid(tok):
                raise _Unsupported
            values.append(tok)
        if not values:
            raise _Unsupported  # a bare keyword (mdtraj tests its truth)
        nxt = self.peek()
        if nxt is not None and nxt not in ("and", "or", "&&", "||", ")", "to"):
            raise _Unsupported  # e.g. a comparison operator or a keyword where mdtraj reads something else
        return values

    def _string_mask(self, field: str, values: list[str]) -> np.ndarray:
        t = self.table
        wanted = set(values)
        if field == "resname":
            per_residue = np.array([n in wanted for n in t.residue_names], dtype=bool)
            return per_residue[t.residue] if t.n_atoms else np.zeros(0, dtype=bool)
        column = t.names if field == "name" else t.symbols
        return np.fromiter((v in wanted for v in column), dtype=bool, count=t.n_atoms)

    def _int_field(self, field: str) -> np.ndarray:
        t = self.table
        if field == "index":
            return np.arange(t.n_atoms)
        if field == "resid":
            return t.residue
        if field == "resseq":
            return t.residue_seq[t.residue]
        return t.residue_chain[t.residue]
