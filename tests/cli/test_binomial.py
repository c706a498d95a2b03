"""Binomial probabilities (anpr.cli.binomial)."""

from __future__ import annotations

import math

import pytest

from anpr.cli.binomial import pmf


def test_pmf_matches_the_exact_coefficients_and_sums_to_one() -> None:
    assert pmf(3, 10, 0.5) == pytest.approx(math.comb(10, 3) / 1024)
    assert pmf(0, 100, 0.01) == pytest.approx(0.99**100)
    assert sum(pmf(i, 50, 0.3) for i in range(51)) == pytest.approx(1.0)


def test_pmf_of_many_trials_does_not_overflow() -> None:
    assert 0.0 < pmf(2000, 4000, 0.5) < 0.02
