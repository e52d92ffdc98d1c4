"""Two distribution functions the transport fits need, in closed form (no scipy import on the hot path).

* :func:`chi2_sf` -- P(chi²_k >= x) for integer k, from the regularised upper
  incomplete gamma Q(k/2, x/2) by the recurrence Q(s+1, y) = Q(s, y) + y^s e^-y / Γ(s+1),
  started at Q(1/2, y) = erfc(√y) or Q(1, y) = e^-y.
* :func:`t_quantile` -- the Student-t quantile for integer degrees of freedom, by
  bisection on the exact finite-sum CDF (Abramowitz & Stegun 26.7.3 / 26.7.4).
"""

from __future__ import annotations

import math


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of chi² with ``dof`` (integer >= 1) degrees of freedom.

    Examples
    --------
    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(2.0, 2), 6)
    (0.05, 0.367879)
    """
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if not math.isfinite(x):
        return 0.0
    if x <= 0:
        return 1.0
    y = 0.5 * x
    if dof % 2:
        s, q = 0.5, math.erfc(math.sqrt(y))
    else:
        s, q = 1.0, math.exp(-y)
    while s < 0.5 * dof - 1e-9:
        q += math.exp(s * math.log(y) - y - math.lgamma(s + 1.0))
        s += 1.0
    return min(1.0, max(0.0, q))


def _t_two_sided(t: float, dof: int) -> float:
    """P(|T| < t) for Student's t with integer ``dof`` (A&S 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(dof))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if dof % 2:
        term, total = math.cos(theta), 0.0
        if dof > 1:
            total = term
            for k in range(3, dof - 1, 2):
                term *= c2 * (k - 1) / k
                total += term
        return (2.0 / math.pi) * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(2, dof - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with integer ``dof`` >= 1.

    Examples
    --------
    >>> round(t_quantile(0.975, 4), 4), round(t_quantile(0.975, 1), 3)
    (2.7764, 12.706)
    """
    target = 2.0 * p - 1.0
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, dof) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_two_sided(mid, dof) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)
