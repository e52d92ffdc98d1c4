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

First minimum (:func:`first_minimum`): g is smoothed with a Gaussian of width
``smooth_nm`` (default 0.01 nm), the first peak is the first local maximum
whose prominence is at least 10 % of the highest smoothed value, and the
cut-off is the first local minimum after it whose prominence (the rise of g on
both sides) is at least 5 % of min(peak height, 2) and at least 0.05; flat minima
(g = 0 over a range) give the centre of the flat range. Noise wiggles on the
flank of a peak have a small prominence and are skipped. Bins whose pair
count (summed over frames, smoothed the same way) is below 0.5 are treated as
g = 0: at small r one or two stray pairs in a tiny shell volume give a huge g
that would otherwise pose as the first peak (a single isolated count smooths
to about 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.errors import AnalysisError


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
    """

    edges_nm: np.ndarray
    g: np.ndarray
    n: np.ndarray
    n_edges: np.ndarray
    counts: np.ndarray | None = None

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
    """

    def __init__(self, r_max_nm: float, bin_nm: float, n_centers: int, n_pairs: int) -> None:
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
        self._counts += h
        self._counts_v += h * volume_nm3
        self.n_frames += 1
        self.pairs_sum += self.n_pairs if n_pairs is None else int(n_pairs)
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
        return RDF(edges_nm=e.copy(), g=g, n=n_mid, n_edges=n_edges, counts=self._counts.copy())


@dataclass(frozen=True)
class FirstMinimum:
    """Result of :func:`first_minimum`.

    Attributes
    ----------
    r_peak_nm : float
        Position of the first peak of the smoothed g(r), in nm (NaN if none).
    g_peak : float
        Smoothed g at the peak.
    r_min_nm : float
        Position of the first minimum after the peak, in nm (NaN if none).
    g_min : float
        Smoothed g at the minimum.
    """

    r_peak_nm: float
    g_peak: float
    r_min_nm: float
    g_min: float

    @property
    def found(self) -> bool:
        """Whether both the peak and the minimum were found."""
        return bool(np.isfinite(self.r_min_nm))


def first_minimum(
    r_nm: np.ndarray,
    g: np.ndarray,
    smooth_nm: float = 0.01,
    counts: np.ndarray | None = None,
    min_count: float = 0.5,
) -> FirstMinimum:
    """Locate the first peak of g(r) and the first minimum after it (see module doc).

    Parameters
    ----------
    r_nm : numpy.ndarray, shape=(n,)
        Evenly spaced radii (bin centres) in nm.
    g : numpy.ndarray, shape=(n,)
        g(r) values.
    smooth_nm : float
        Standard deviation of the Gaussian smoothing, in nm (0 disables smoothing).
    counts : numpy.ndarray, shape=(n,), optional
        Pair counts behind each bin (summed over frames). Where the smoothed
        count is below ``min_count`` the smoothed g is set to 0, so a few stray
        pairs at small r (huge g from a tiny shell volume) cannot pose as a peak.
    min_count : float
        Smoothed count per bin below which g is treated as 0.

    Returns
    -------
    FirstMinimum
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    r = np.asarray(r_nm, dtype=float)
    g = np.asarray(g, dtype=float)
    nan = float("nan")
    if len(r) < 3 or not np.any(g > 0):
        return FirstMinimum(nan, nan, nan, nan)
    dr = float(r[1] - r[0])
    gs = gaussian_filter1d(g, smooth_nm / dr, mode="nearest") if smooth_nm > 0 else g.copy()
    if counts is not None:
        c = np.asarray(counts, dtype=float)
        cs = gaussian_filter1d(c, smooth_nm / dr, mode="nearest") if smooth_nm > 0 else c
        gs = np.where(cs >= min_count, gs, 0.0)
    top = float(np.max(gs))
    # pad with zeros on the left so a peak at the first bins still counts as a peak
    peaks, _ = find_peaks(np.concatenate([[0.0], gs]), prominence=0.1 * top)
    peaks = peaks - 1
    if len(peaks) == 0:
        return FirstMinimum(nan, nan, nan, nan)
    p = int(peaks[0])
    g_peak = float(gs[p])
    # The dip must rise again by a noticeable amount on its right. Scaling that with the
    # first peak height would reject the real minimum of sharp ion-solvent peaks (g ~ 30
    # followed by a second shell of g < 1), so the scale is capped at g = 2.
    minima, _ = find_peaks(-gs, prominence=max(0.05 * min(g_peak, 2.0), 0.05))
    minima = minima[minima > p]
    if len(minima) == 0:
        return FirstMinimum(float(r[p]), g_peak, nan, nan)
    m = int(minima[0])
    return FirstMinimum(float(r[p]), g_peak, float(r[m]), float(gs[m]))
