"""Storage-update memory: hand-built branches, a naive reference, and property invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certssb.certifier.memory import CertifiedMemory, processing_order, storage_update
from certssb.errors import ConfigError


def reference_update(x, labels, radii, order):
    """Naive transcription of METHOD.md sec. 3 step 4 (exact norms, plain loops)."""
    stored = []
    out = {}
    for i in order:
        c, r, act = int(labels[i]), float(radii[i]), "kept"
        conflicts = []
        for xj, cj, rj in stored:
            d = float(np.sqrt(np.sum((np.asarray(x[i], float) - xj) ** 2)))
            if cj != c and d < rj + r:
                conflicts.append((d - rj, d, cj, rj))
        if conflicts:
            m, d, cj, rj = min(conflicts, key=lambda t: t[0])
            if m < 0:
                c, r, act = cj, rj - d, "relabelled"
            else:
                r, act = m, "trimmed"
        stored.append((np.asarray(x[i], float), c, r))
        out[i] = (c, r, act)
    return out


def check_invariants(x, res, tol=1e-9):
    x = np.asarray(x, dtype=float).reshape(len(res.label), -1)
    order = res.order
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    lab, rad = res.label, res.radius
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    # 1. no two stored balls with different labels overlap
    diff = lab[:, None] != lab[None, :]
    need = rad[:, None] + rad[None, :]
    assert np.all(d[diff] >= need[diff] - tol * np.maximum(1.0, need[diff]))
    # 2. radii never increase except through relabelling, which lands inside an earlier ball
    for i in range(len(lab)):
        act = res.action[i]
        if act == "kept":
            assert lab[i] == res.label_before[i] and rad[i] == res.radius_before[i]
        elif act == "trimmed":
            assert lab[i] == res.label_before[i] and 0 <= rad[i] < res.radius_before[i]
        else:
            assert act == "relabelled" and lab[i] != res.label_before[i] and rad[i] > 0
            earlier = (pos < pos[i]) & (lab == lab[i])
            assert np.any(earlier & (d[i] + rad[i] <= rad * (1 + tol) + tol)), "relabelled ball not inside a stored ball"
    # 3. queries inside a stored ball return its label
    mem = CertifiedMemory(x.shape[1], capacity=1)
    for i in order:
        mem.add(x[i], res.label_before[i], res.radius_before[i])
    np.testing.assert_array_equal(mem.labels, lab[order])
    np.testing.assert_array_equal(mem.radii, rad[order])
    rng = np.random.default_rng(0)
    for i in np.flatnonzero(rad > 0):
        assert mem.query(x[i]) == lab[i]
        for _ in range(3):
            u = rng.normal(size=x.shape[1])
            pt = x[i] + u / np.linalg.norm(u) * rad[i] * rng.uniform(0, 0.999)
            assert mem.query(pt) == lab[i]


# ------------------------------------------------ hand-built branches


def test_kept_when_balls_do_not_overlap():
    res = storage_update(np.array([[0.0], [3.0]]), [0, 1], [1.0, 1.0])
    assert list(res.action) == ["kept", "kept"]
    np.testing.assert_array_equal(res.radius, [1.0, 1.0])
    assert res.n_trimmed == 0 and res.n_relabelled == 0


def test_trimmed_to_distance_minus_stored_radius():
    res = storage_update(np.array([[0.0], [1.5]]), [0, 1], [1.0, 1.0])
    assert res.action[1] == "trimmed" and res.label[1] == 1
    assert res.radius[1] == pytest.approx(0.5)
    assert res.n_trimmed == 1


def test_relabelled_inside_other_ball():
    res = storage_update(np.array([[0.0], [0.25]]), [0, 1], [1.0, 2.0])
    assert res.action[1] == "relabelled" and res.label[1] == 0
    assert res.radius[1] == pytest.approx(0.75)
    assert res.label_before[1] == 1 and res.radius_before[1] == 2.0
    assert res.n_relabelled == 1


def test_boundary_m_zero_is_trimmed_to_zero():
    res = storage_update(np.array([[0.0], [1.0]]), [0, 1], [1.0, 0.5])
    assert res.action[1] == "trimmed" and res.label[1] == 1 and res.radius[1] == 0.0
    mem = CertifiedMemory(1)
    mem.add([0.0], 0, 1.0)
    mem.add([1.0], 1, 0.5)
    assert mem.query([1.0]) is None  # open ball: the boundary is not inside
    assert mem.query([0.999]) == 0


def test_exactly_touching_balls_are_kept():
    res = storage_update(np.array([[0.0], [2.0]]), [0, 1], [1.0, 1.0])
    assert res.action[1] == "kept" and res.radius[1] == 1.0


def test_zero_radius_input_is_stored_and_can_be_relabelled():
    res = storage_update(np.array([[0.0], [0.5], [5.0]]), [0, 1, 1], [1.0, 0.0, 0.0])
    assert res.action[1] == "relabelled" and res.label[1] == 0 and res.radius[1] == pytest.approx(0.5)
    assert res.action[2] == "kept" and res.radius[2] == 0.0


def test_2d_multiple_conflicts_takes_the_minimum():
    x = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 2.0]])
    # stored: class 0 at origin R=1, class 2 at (4,0) R=2; new class 1 at (2,2) R=2
    res = storage_update(x, [0, 2, 1], [1.0, 2.0, 2.0])
    d0, d1 = np.sqrt(8.0), np.sqrt(8.0)
    assert res.action[2] == "trimmed"
    assert res.radius[2] == pytest.approx(min(d0 - 1.0, d1 - 2.0))
    # same-label stored balls never conflict
    res = storage_update(x, [1, 1, 1], [3.0, 3.0, 3.0])
    assert list(res.action) == ["kept"] * 3


def test_2d_relabel_to_deepest_ball():
    # x lies inside ball A (class 0) only; class-2 ball overlaps the new ball but not x
    x = np.array([[0.0, 0.0], [3.0, 0.0], [0.5, 0.0]])
    res = storage_update(x, [0, 2, 1], [1.0, 1.0, 2.0])
    assert res.action[2] == "relabelled" and res.label[2] == 0 and res.radius[2] == pytest.approx(0.5)
    check_invariants(x, res)


def test_exact_near_boundary_far_from_origin():
    """Large norms: the matrix-vector screen alone has ~1e-6 error here; exact norms decide."""
    dim = 100
    a = np.full(dim, 1e4)
    b = a.copy()
    b[0] += 2.0
    res = storage_update(np.stack([a, b]), [0, 1], [1.0, 1.0])
    assert res.action[1] == "kept"
    res = storage_update(np.stack([a, b]), [0, 1], [1.0, 1.0 + 1e-9])
    assert res.action[1] == "trimmed" and res.radius[1] == pytest.approx(1.0, abs=1e-12)
    mem = CertifiedMemory(dim)
    mem.add(a, 0, 1.0)
    inside = a.copy()
    inside[0] += 1.0 - 1e-9
    on = a.copy()
    on[0] += 1.0
    assert mem.query(inside) == 0 and mem.query(on) is None


# ------------------------------------------------ reference and properties


@pytest.mark.parametrize("seed", range(40))
def test_matches_naive_reference_and_invariants(seed):
    rng = np.random.default_rng(seed)
    m, dim = int(rng.integers(1, 60)), int(rng.choice([1, 2, 5, 30]))
    x = rng.normal(size=(m, dim)) * (1 + 100 * (seed % 3 == 0))
    labels = rng.integers(0, 3, size=m)
    radii = rng.exponential(1.0, size=m) * np.sqrt(dim) * (rng.random(m) > 0.2)
    order = processing_order(m, "shuffle", seed)
    res = storage_update(x, labels, radii, order)
    ref = reference_update(x, labels, radii, order)
    for i in range(m):
        c, r, act = ref[i]
        assert res.label[i] == c and res.action[i] == act
        assert res.radius[i] == pytest.approx(r, rel=1e-12, abs=1e-12)
    check_invariants(x, res)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-6, 6), st.integers(-6, 6), st.integers(0, 2), st.integers(0, 8)
        ),
        min_size=1,
        max_size=25,
    ),
    st.booleans(),
)
def test_invariants_property_on_grid(items, halve):
    """Integer grid points and radii make exact touching (m == 0) cases common."""
    x = np.array([[a, b] for a, b, _, _ in items], dtype=float)
    labels = np.array([c for _, _, c, _ in items])
    radii = np.array([r for *_, r in items], dtype=float) / (2.0 if halve else 1.0)
    res = storage_update(x, labels, radii)
    check_invariants(x, res)
    ref = reference_update(x, labels, radii, np.arange(len(items)))
    for i in range(len(items)):
        assert (res.label[i], res.action[i]) == ref[i][::2] and res.radius[i] == pytest.approx(ref[i][1], abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_all_equal_labels_change_nothing(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, 3))
    radii = rng.exponential(2.0, size=50)
    res = storage_update(x, np.full(50, 1), radii, processing_order(50, "shuffle", seed))
    assert np.all(res.action == "kept")
    np.testing.assert_array_equal(res.radius, radii)
    np.testing.assert_array_equal(res.label, 1)


# ------------------------------------------------ API details


def test_processing_order():
    np.testing.assert_array_equal(processing_order(5), np.arange(5))
    a, b = processing_order(100, "shuffle", 3), processing_order(100, "shuffle", 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(3).permutation(100))
    np.testing.assert_array_equal(np.sort(a), np.arange(100))
    assert not np.array_equal(a, processing_order(100, "shuffle", 4))
    with pytest.raises(ConfigError):
        processing_order(5, "random")


def test_order_changes_result_and_is_recorded():
    x = np.array([[0.0], [1.5]])
    fwd = storage_update(x, [0, 1], [1.0, 1.0], [0, 1])
    bwd = storage_update(x, [0, 1], [1.0, 1.0], [1, 0])
    assert fwd.action[1] == "trimmed" and fwd.action[0] == "kept"
    assert bwd.action[0] == "trimmed" and bwd.action[1] == "kept"
    np.testing.assert_array_equal(bwd.order, [1, 0])


def test_shared_memory_continues():
    mem = CertifiedMemory(1)
    storage_update(np.array([[0.0]]), [0], [1.0], memory=mem)
    res = storage_update(np.array([[0.5]]), [1], [1.0], memory=mem)
    assert res.action[0] == "relabelled" and len(mem) == 2


def test_growth_beyond_capacity_and_multidim_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1, 2, 2))  # flattened to 4-D
    mem = CertifiedMemory(4, capacity=1)
    for xi in x:
        mem.add(xi, 0, 0.1)
    assert len(mem) == 40 and mem.centres.shape == (40, 4)
    np.testing.assert_array_equal(mem.centres, x.reshape(40, 4))
    res = storage_update(x, np.zeros(40, int), np.full(40, 0.1))
    assert np.all(res.action == "kept")


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((2, 1)), [0, 1], [1.0]),
        (np.zeros((2, 1)), [0, 1], [1.0, -1.0]),
        (np.zeros((2, 1)), [0, 1], [1.0, np.inf]),
        (np.array([[0.0], [np.nan]]), [0, 1], [1.0, 1.0]),
    ],
)
def test_rejects_bad_input(args):
    with pytest.raises(ConfigError):
        storage_update(*args)
    with pytest.raises(ConfigError):
        storage_update(np.zeros((2, 1)), [0, 1], [1.0, 1.0], [0, 0])
    with pytest.raises(ConfigError):
        CertifiedMemory(2).add([0.0, 1.0, 2.0], 0, 1.0)


# ------------------------------------------------ compact (float32) centres


@pytest.mark.parametrize("seed", range(6))
def test_float32_inputs_are_stored_as_float32_with_the_same_answers(seed, monkeypatch):
    """Images are float32 batches: the memory keeps them as float32 (half the bytes) and its
    answers equal the naive reference and the same inputs given as float64, also when the
    screening product is split into many blocks."""
    import certssb.certifier.memory as memory_module

    rng = np.random.default_rng(100 + seed)
    m, dim = 50, 30
    scale = 1 + 100 * (seed % 2)  # large norms: the screen's rounding matters, exact norms decide
    x32 = (rng.normal(size=(m, dim)) * scale).astype(np.float32)
    labels = rng.integers(0, 3, size=m)
    radii = rng.exponential(1.0, size=m) * np.sqrt(dim) * scale * (rng.random(m) > 0.2)
    order = processing_order(m, "shuffle", seed)
    monkeypatch.setattr(memory_module, "BLOCK_VALUES", 7 * dim)  # blocks of 7 rows
    mem32 = CertifiedMemory(dim)
    res32 = storage_update(x32, labels, radii, order, memory=mem32)
    res64 = storage_update(x32.astype(np.float64), labels, radii, order)
    ref = reference_update(x32.astype(np.float64), labels, radii, order)
    assert mem32.centre_dtype == np.float32 and mem32.centres.nbytes == m * dim * 4
    assert np.array_equal(mem32.centres, x32[order])
    assert (res32.action != "kept").sum() >= 5  # conflicts really happen
    np.testing.assert_array_equal(res32.label, res64.label)
    np.testing.assert_array_equal(res32.radius, res64.radius)
    np.testing.assert_array_equal(res32.action, res64.action)
    for i in range(m):
        c, r, act = ref[i]
        assert res32.label[i] == c and res32.action[i] == act
        assert res32.radius[i] == pytest.approx(r, rel=1e-12, abs=1e-12)


def test_a_centre_that_needs_float64_switches_the_storage():
    mem = CertifiedMemory(2, capacity=1)
    mem.add(np.array([0.5, 0.25], dtype=np.float32), 0, 1.0)
    assert mem.centre_dtype == np.float32
    third = np.array([1.0 / 3.0, 2.0])  # not a float32 value
    mem.add(third, 1, 1.0)
    assert mem.centre_dtype == np.float64
    np.testing.assert_array_equal(mem.centres, [[0.5, 0.25], third])
    assert mem.query(third + np.array([1e-9, 0.0])) in (0, 1)  # answered from the exact centre


def test_memories_sharing_centres_store_each_input_once_and_answer_alike():
    """The joint and paper memories of a set add the same inputs in the same order: one store of
    centres serves both, and each answers exactly as a memory with its own centres."""
    from certssb.certifier.memory import CentreStore

    rng = np.random.default_rng(7)
    m, dim = 40, 12
    x = rng.normal(size=(m, dim)).astype(np.float32)
    labels = rng.integers(0, 3, size=m)
    radii_a = rng.exponential(1.5, size=m)
    radii_b = radii_a * rng.uniform(0.5, 2.0, size=m)
    order = processing_order(m, "shuffle", 7)
    store = CentreStore(dim, capacity=4)
    shared_a, shared_b = CertifiedMemory(dim, 4, centres=store), CertifiedMemory(dim, 4, centres=store)
    got_a = storage_update(x, labels, radii_a, order, memory=shared_a)
    got_b = storage_update(x, labels, radii_b, order, memory=shared_b)
    own_a, own_b = storage_update(x, labels, radii_a, order), storage_update(x, labels, radii_b, order)
    for got, own in ((got_a, own_a), (got_b, own_b)):
        np.testing.assert_array_equal(got.label, own.label)
        np.testing.assert_array_equal(got.radius, own.radius)
        np.testing.assert_array_equal(got.action, own.action)
    assert (got_a.action != "kept").sum() >= 3 and not np.array_equal(got_a.radius, got_b.radius)
    assert len(store) == m and store.nbytes == m * dim * 4  # once, as float32
    np.testing.assert_array_equal(shared_b.centres, x[order])
    with pytest.raises(ConfigError, match="same inputs in the same order"):
        CertifiedMemory(dim, centres=store).add(x[order[0]] + 1.0, 0, 1.0)
