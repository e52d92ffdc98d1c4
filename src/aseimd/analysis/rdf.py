"""Radial distribution functions with periodic normalisation, and their first minimum.

Normalisation. For a centre group C (N_c atoms) and a shell group S (N_s
atoms), let N_pairs be the number of (c, s) pairs that count: N_c N_s minus
the excluded pairs (an atom with itself where the groups overlap, and, if
asked, pairs inside one residue). With H_f(k) the number of counted pairs in
bin k = [r_k, r_k + dr) in frame f of volume V_f,

    g(r_k) = (1 / n_frames) sum_f  H_f(k) V_f / (N_pairs V_shell(k)),
    V_shell(k) = 4/3 pi ((r_k + dr)^3 - r_k^3),

i.e. ideal-gas normalisation with the pair density N_pairs / V_f of each frame
(an ideal gas gives g = 1 at every r, also in NPT). The running coordination
number n(r) is the mean number of counted shell atoms within r of a centre
atom, counted directly: n(r_{k+1}) = sum_{k' <= k} sum_f H_f(k') / (n_frames N_c);
at constant volume this equals 4 pi rho int_0^r g(r') r'^2 dr' with
rho = N_pairs / (N_c V). The tables give g at bin centres and n at bin centres
(linear interpolation of the cumulative count within the bin).

Centres restricted to a z window (:mod:`aseimd.analysis.coordination`,
``z_range_nm``): only the N_c,f centre atoms inside the window in frame f count,
with all shell atoms of the cell as neighbours, so the counted pairs vary per
frame, N_pairs,f = N_c,f N_s minus the exclusions of those centres, and

    g(r_k) = sum_f H_f(k) V_f / (V_shell(k) sum_f N_pairs,f),
    n(r_{k+1}) = sum_{k' <= k} sum_f H_f(k') / sum_f N_c,f,

which reduce to the formulas above for constant N_pairs and N_c. Uniform
(ideal-gas) shell atoms still give g = 1: E[H_f(k)] = N_pairs,f V_shell(k) / V_f.
The reference density is the cell average N_s / V_f, so in a layer that holds
fewer (more) shell atoms than the cell average, g tends to that ratio at large r,
not to 1.

First minimum: :func:`aseimd.analysis.rdf_minimum.first_minimum` (re-exported
here): the first dip after the first peak of the smoothed g whose depth and
rise are significant against the counting noise of the histogram (``counts``)
and its scatter between consecutive frame blocks (``block_g``), see that module.

Frame blocks: with ``n_frames`` given, the accumulator also keeps the
histograms of B = min(10, n_frames) consecutive frame blocks, so that
``RDF.block_g[b]`` is g(r) of block b by the formula above (its own frames and
pair counts) and ``g = block_weights @ block_g`` exactly (``block_weights[b]`` =
the block's share of sum_f N_pairs,f).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.analysis.rdf_minimum import NOISE_BLOCKS, FirstMinimum, first_minimum
from aseimd.errors import AnalysisError

__all__ = ["RDF", "RDFAccumulator", "FirstMinimum", "first_minimum", "first_minimum_of"]


@dataclass(frozen=True)
class RDF:
    """A normalised radial distribution function.

    Attributes
    ----------
    edges_nm : numpy.ndarray, shape=(n_bins + 1,)
        Bin edges in nm, starting at 0.
    g : numpy.ndarray, shape=(n_bins,)
        g(r) at the bin centres (dimensionless).
    n : numpy.ndarray, shape=(n_bins,)
        Running coordination number at the bin centres (shell atoms per centre atom).
    n_edges : numpy.ndarray, shape=(n_bins + 1,)
        Running coordination number at the bin edges.
    counts : numpy.ndarray, shape=(n_bins,)
        Counted pairs per bin, summed over frames.
    block_g : numpy.ndarray, shape=(n_blocks, n_bins), optional
        g(r) of consecutive frame blocks (None when the accumulator was not told the frame count).
    block_weights : numpy.ndarray, shape=(n_blocks,), optional
        Each block's share of the counted pairs: ``g = block_weights @ block_g``.
    """

    edges_nm: np.ndarray
    g: np.ndarray
    n: np.ndarray
    n_edges: np.ndarray
    counts: np.ndarray | None = None
    block_g: np.ndarray | None = None
    block_weights: np.ndarray | None = None

    @property
    def r_nm(self) -> np.ndarray:
        """Bin centres in nm, shape=(n_bins,)."""
        return 0.5 * (self.edges_nm[1:] + self.edges_nm[:-1])


class RDFAccumulator:
    """Accumulate pair-distance histograms frame by frame (prepare / per frame / conclude).

    Parameters
    ----------
    r_max_nm : float
        Largest distance histogrammed, in nm (rounded down to a whole number of bins).
    bin_nm : float
        Bin width in nm.
    n_centers : int
        Atoms in the centre group.
    n_pairs : int
        Counted (centre, shell) pairs per frame, after exclusions.
    n_frames : int, optional
        Frames that will be added: also keep the histograms of min(10, n_frames) consecutive
        frame blocks (for the noise of g, :attr:`RDF.block_g`). Frames are assigned to blocks
        in the order they are added.
    """

    def __init__(self, r_max_nm: float, bin_nm: float, n_centers: int, n_pairs: int,
                 n_frames: int | None = None) -> None:
        if not bin_nm > 0:
            raise AnalysisError(f"bin width must be > 0 nm, got {bin_nm}")
        n_bins = int(np.floor(r_max_nm / bin_nm + 1e-9))
        if n_bins < 2:
            raise AnalysisError(f"r_max {r_max_nm} nm holds fewer than 2 bins of {bin_nm} nm")
        self.bin_nm = float(bin_nm)
        self.edges_nm = np.arange(n_bins + 1) * self.bin_nm
        self.n_centers = int(n_centers)
        self.n_pairs = int(n_pairs)
        self._counts = np.zeros(n_bins)  # sum_f H_f
        self._counts_v = np.zeros(n_bins)  # sum_f H_f V_f
        self.n_frames = 0
        self.pairs_sum = 0  # sum_f N_pairs,f
        self.centers_sum = 0  # sum_f N_c,f
        self.n_frames_expected = int(n_frames) if n_frames else 0
        self.n_blocks = min(NOISE_BLOCKS, self.n_frames_expected)
        if self.n_blocks:
            self._block_counts_v = np.zeros((self.n_blocks, n_bins))  # sum_{f in b} H_f V_f
            self._block_pairs = np.zeros(self.n_blocks)  # sum_{f in b} N_pairs,f

    @property
    def r_max_nm(self) -> float:
        """Upper edge of the last bin, in nm."""
        return float(self.edges_nm[-1])

    def add_frame(self, distances_nm: np.ndarray, volume_nm3: float, n_pairs: int | None = None,
                  n_centers: int | None = None) -> None:
        """Add the counted pair distances of one frame (any distances >= r_max are ignored).

        ``n_pairs`` and ``n_centers``: the counted pairs and centre atoms of this frame when they vary
        (centres in a z window); default the constructor's.
        """
        k = (np.asarray(distances_nm) / self.bin_nm).astype(np.int64)
        h = np.bincount(k[k < len(self._counts)], minlength=len(self._counts))
        hv = h * volume_nm3
        self._counts += h
        self._counts_v += hv
        pairs = self.n_pairs if n_pairs is None else int(n_pairs)
        if self.n_blocks:
            b = min(self.n_frames * self.n_blocks // self.n_frames_expected, self.n_blocks - 1)
            self._block_counts_v[b] += hv
            self._block_pairs[b] += pairs
        self.n_frames += 1
        self.pairs_sum += pairs
        self.centers_sum += self.n_centers if n_centers is None else int(n_centers)

    def result(self) -> RDF:
        """The normalised g(r) and n(r) over the frames added so far."""
        if self.n_frames == 0:
            raise AnalysisError("no frames were analysed")
        e = self.edges_nm
        shell = 4.0 / 3.0 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)
        if self.pairs_sum > 0:
            g = self._counts_v / (self.pairs_sum * shell)
        else:
            g = np.zeros_like(shell)
        per_center = self._counts / self.centers_sum if self.centers_sum > 0 else np.zeros_like(shell)
        n_edges = np.concatenate([[0.0], np.cumsum(per_center)])
        n_mid = n_edges[:-1] + 0.5 * per_center
        block_g = block_weights = None
        if self.n_blocks and self.pairs_sum > 0:
            used = self._block_pairs > 0
            block_g = self._block_counts_v[used] / (self._block_pairs[used, None] * shell)
            block_weights = self._block_pairs[used] / self.pairs_sum
        return RDF(edges_nm=e.copy(), g=g, n=n_mid, n_edges=n_edges, counts=self._counts.copy(),
                   block_g=block_g, block_weights=block_weights)


def first_minimum_of(rdf: RDF, smooth_nm: float = 0.01, rule: str = "significance") -> FirstMinimum:
    """The first minimum of an accumulated :class:`RDF`, with its counts and frame blocks for the noise.

    ``rule``: ``"significance"`` (default) or ``"prominence"`` (the fixed thresholds of aseimd <= 0.x,
    kept to reproduce earlier cut-offs), see :mod:`aseimd.analysis.rdf_minimum`.
    """
    return first_minimum(rdf.r_nm, rdf.g, smooth_nm, counts=rdf.counts, block_g=rdf.block_g,
                         block_weights=rdf.block_weights, rule=rule)
