"""PSI, binned KS and binned Wasserstein: properties on counts and on shifted samples (pure)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models_store.monitoring.distances import binned_ks, binned_wasserstein, psi
from models_store.registry.drift_reference import binned

counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=12)


@st.composite
def two_counts(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    first = draw(counts)
    second = draw(st.lists(st.integers(0, 10_000), min_size=len(first), max_size=len(first)))
    return np.array(first), np.array(second)


@given(counts)
def test_identical_counts_are_zero_apart(values: list[int]) -> None:
    c = np.array(values)
    assert psi(c, c) == 0.0
    if c[:-1].sum() and c.sum():
        assert binned_ks(c, c) == 0.0
        assert binned_wasserstein(c, c) == 0.0


@given(two_counts())
def test_the_distances_are_symmetric_non_negative_and_ks_bounds_wasserstein(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b = pair
    assert psi(a, b) >= 0.0
    assert math.isclose(psi(a, b), psi(b, a), rel_tol=1e-12, abs_tol=1e-15)
    ks, w = binned_ks(a, b), binned_wasserstein(a, b)
    if a.sum() == 0 or b.sum() == 0:
        assert math.isnan(ks)
        assert math.isnan(w)
        return
    assert ks == binned_ks(b, a)
    assert math.isclose(w, binned_wasserstein(b, a), rel_tol=1e-12, abs_tol=1e-15)
    assert 0.0 <= w <= ks + 1e-12 <= 1.0 + 1e-12


@given(two_counts())
def test_proportional_counts_are_the_same_distribution_for_ks_and_wasserstein(
    pair: tuple[np.ndarray, np.ndarray],
) -> None:
    a, _ = pair
    if a.sum():
        assert binned_ks(a, 3 * a) < 1e-12
        assert binned_wasserstein(a, 3 * a) < 1e-12


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), small=st.floats(0.0, 1.0), extra=st.floats(0.05, 2.0))
def test_the_distances_grow_with_a_shift(seed: int, small: float, extra: float) -> None:
    rng = np.random.default_rng(seed)
    reference = binned(rng.normal(size=5_000))
    edges = np.array(reference.edges)
    current = rng.normal(size=2_000)

    def counted(shift: float) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, current + shift, side="right"),
                           minlength=edges.size + 1)  # fmt: skip

    ref, unshifted = np.array(reference.counts), counted(0.0)
    near, far = counted(small), counted(small + extra)
    # A larger shift moves the sample's CDF further below its own at every edge.
    assert binned_ks(unshifted, far) >= binned_ks(unshifted, near)
    assert binned_wasserstein(unshifted, far) >= binned_wasserstein(unshifted, near)
    assert binned_wasserstein(ref, counted(small + 1.0)) > binned_wasserstein(ref, unshifted)
    # PSI: none without a shift, major after one standard deviation, and more after two.
    assert psi(ref, counted(0.0)) < 0.1
    assert psi(ref, counted(1.0)) > 0.25
    assert psi(ref, counted(2.0)) > psi(ref, counted(1.0))
