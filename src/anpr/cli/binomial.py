"""The binomial distribution's probabilities, for the evaluation's statistics (McNemar's test, order statistics).

Computed in logs: the coefficients of a few thousand trials overflow a float. scipy has the same, but it is not in
the runtime environment that ``anpr eval`` runs in.
"""

from __future__ import annotations

import math


def pmf(i: int, n: int, p: float) -> float:
    """P(Binomial(n, p) = i), for 0 < p < 1."""
    log_coefficient = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
    return math.exp(log_coefficient + i * math.log(p) + (n - i) * math.log1p(-p))
