"""Storage-update certification (METHOD.md section 3, step 4).

Test inputs are processed in a fixed, logged order. For input x with prediction c, radius R,
and stored balls (x_j, c_j, R_j) at distance d_j = ||x - x_j||_2:

    conflicts = {j : c_j != c and d_j < R_j + R}
    if conflicts: m = min_j (d_j - R_j)
        m < 0  -> "relabelled": c = c_j*, R = R_j* - d_j*  (x lies inside ball j*)
        m >= 0 -> "trimmed":    R = m
    store (x, c, R)

Invariant: stored balls with different labels never overlap (d_ij >= R_i + R_j), so the
deployed classifier (answer a query inside a stored open ball with that ball's label) is
well defined. Distances are Euclidean on flattened vectors, computed in float64. The centres
are stored as float32 while every input is exactly a float32 vector (images read as float32
batches always are: half the memory, no value changes) and as float64 from the first input that
is not; float64 arithmetic runs on float64 copies of blocks, so the answers do not depend on
the storage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certssb.errors import ConfigError

__all__ = ["CentreStore", "CertifiedMemory", "MemoryResult", "processing_order", "storage_update"]

KEPT, TRIMMED, RELABELLED = "kept", "trimmed", "relabelled"
BLOCK_VALUES = 1 << 22  # float64 values upcast at once by the screening product (32 MB)


class CentreStore:
    """The centres of one or more memories, each stored once.

    Memories that add the same inputs in the same order (the ``joint`` and ``paper`` memories of
    a test set) share one store: the k-th centre of each is row k. Rows are float32 while every
    centre is exactly a float32 vector, float64 from the first that is not.
    """

    def __init__(self, dim: int, capacity: int = 1024):
        if int(dim) < 1:
            raise ConfigError(f"memory dimension must be >= 1, got {dim!r}")
        self.dim = int(dim)
        cap = max(int(capacity), 1)
        self._x = np.empty((cap, self.dim), dtype=np.float32)
        self._sq = np.empty(cap, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def dtype(self) -> np.dtype:
        return self._x.dtype

    @property
    def nbytes(self) -> int:
        return int(self._n * self.dim * self._x.dtype.itemsize)

    def rows(self, n: int) -> np.ndarray:
        return self._x[:n]

    def sq(self, n: int) -> np.ndarray:
        return self._sq[:n]

    def matches(self, i: int, v: np.ndarray) -> bool:
        """Row ``i`` is exactly ``v``."""
        return bool(np.array_equal(self._x[i].astype(np.float64), v))

    def append(self, v: np.ndarray) -> None:
        if self._x.dtype == np.float32:
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float32's range: not exact
                exact = np.array_equal(v.astype(np.float32).astype(np.float64), v)
            if not exact:  # this centre needs float64: store every centre so
                wide = np.empty(self._x.shape, dtype=np.float64)
                wide[: self._n] = self._x[: self._n]
                self._x = wide
        if self._n == self._x.shape[0]:
            cap = 2 * self._x.shape[0]
            for name in ("_x", "_sq"):
                old = getattr(self, name)
                grown = np.empty((cap,) + old.shape[1:], dtype=old.dtype)
                grown[: self._n] = old[: self._n]
                setattr(self, name, grown)
        self._x[self._n] = v
        self._sq[self._n] = v @ v
        self._n += 1

    def dot(self, v: np.ndarray, n: int) -> np.ndarray:
        """``rows(n) @ v`` in float64 (float32 rows upcast one block at a time)."""
        if self._x.dtype == np.float64:
            return self._x[:n] @ v
        out = np.empty(n, dtype=np.float64)
        step = max(1, BLOCK_VALUES // self.dim)
        for start in range(0, n, step):
            stop = min(n, start + step)
            out[start:stop] = self._x[start:stop].astype(np.float64) @ v
        return out

    def distances(self, index: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Exact ``||row_j - v||`` in float64 for the rows ``index``."""
        return np.linalg.norm(self._x[index].astype(np.float64) - v, axis=1)


class CertifiedMemory:
    """Growing store of certified balls (centre, label, radius) in R^dim.

    ``centres``: a :class:`CentreStore` shared with memories that add the same inputs in the same
    order (default: a store of its own); a different input at a shared position is an error.
    """

    def __init__(self, dim: int, capacity: int = 1024, centres: CentreStore | None = None):
        if int(dim) < 1:
            raise ConfigError(f"memory dimension must be >= 1, got {dim!r}")
        self.dim = int(dim)
        if centres is not None and centres.dim != self.dim:
            raise ConfigError(f"shared centres have dimension {centres.dim}, the memory {self.dim}")
        cap = max(int(capacity), 1)
        self._store = centres if centres is not None else CentreStore(self.dim, cap)
        self._label = np.empty(cap, dtype=np.int64)
        self._radius = np.empty(cap, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def centres(self) -> np.ndarray:
        return self._store.rows(self._n)

    @property
    def centre_store(self) -> CentreStore:
        return self._store

    @property
    def centre_dtype(self) -> np.dtype:
        """float32 while every stored centre is exactly a float32 vector, else float64."""
        return self._store.dtype

    @property
    def labels(self) -> np.ndarray:
        return self._label[: self._n]

    @property
    def radii(self) -> np.ndarray:
        return self._radius[: self._n]

    def _vector(self, x) -> np.ndarray:
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.size != self.dim:
            raise ConfigError(f"memory input has {v.size} values, expected {self.dim}")
        if not np.all(np.isfinite(v)):
            raise ConfigError("memory input contains NaN or inf")
        return v

    def _candidates(self, v: np.ndarray, reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices j with ||v - x_j|| < reach_j and their EXACT distances.

        One matrix-vector product screens all stored points; its rounding error on the
        squared distance is bounded by err, and |sqrt(a) - sqrt(b)| <= sqrt(|a - b|), so a
        screen widened by sqrt(err) misses no true candidate. Survivors get exact norms.
        """
        n = self._n
        if n == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        sq_v = float(v @ v)
        sq_x = self._store.sq(n)
        sq = sq_x + sq_v - 2.0 * self._store.dot(v, n)
        err = 4.0 * (self.dim + 4) * np.finfo(np.float64).eps * (sq_x + sq_v)
        approx = np.sqrt(np.maximum(sq, 0.0))
        screen = np.flatnonzero(approx < reach + np.sqrt(err))
        if screen.size == 0:
            return screen.astype(np.int64), np.empty(0)
        d = self._store.distances(screen, v)
        keep = d < reach[screen]
        return screen[keep].astype(np.int64), d[keep]

    def _append(self, v: np.ndarray, label: int, radius: float) -> None:
        i = self._n
        if i < len(self._store):  # a memory sharing the store has added this position already
            if not self._store.matches(i, v):
                raise ConfigError("memories sharing their centres must add the same inputs in the same order")
        else:
            self._store.append(v)
        if i == self._label.shape[0]:
            for name in ("_label", "_radius"):
                old = getattr(self, name)
                grown = np.empty(2 * old.shape[0], dtype=old.dtype)
                grown[:i] = old[:i]
                setattr(self, name, grown)
        self._label[i] = label
        self._radius[i] = radius
        self._n += 1

    def add(self, x, label: int, radius: float) -> tuple[int, float, str]:
        """Certify x (prediction ``label``, radius ``radius``) against the memory, store it,
        and return ``(label, radius, action)`` with action in kept / trimmed / relabelled."""
        v = self._vector(x)
        c = int(label)
        r = float(radius)
        if not np.isfinite(r) or r < 0.0:
            raise ConfigError(f"memory radius must be finite and >= 0, got {radius!r}")
        action = KEPT
        n = self._n
        if n:
            other = self._label[:n] != c
            reach = np.where(other, self._radius[:n] + r, -np.inf)  # same label: never a conflict
            idx, d = self._candidates(v, reach)
            if idx.size:
                slack = d - self._radius[idx]
                k = int(np.argmin(slack))
                m = float(slack[k])
                if m < 0.0:  # x lies inside ball j* = idx[k]
                    j = idx[k]
                    c, r, action = int(self._label[j]), float(self._radius[j] - d[k]), RELABELLED
                else:
                    r, action = m, TRIMMED
        self._append(v, c, r)
        return c, r, action

    def query(self, x) -> int | None:
        """Label of a stored open ball (d < R) containing x, or None."""
        v = self._vector(x)
        idx, _ = self._candidates(v, self._radius[: self._n])
        return int(self._label[idx[0]]) if idx.size else None


@dataclass
class MemoryResult:
    """Per-input outcome of :func:`storage_update`, indexed like the inputs (not the order)."""

    label: np.ndarray  # int64: certified label after the update
    radius: np.ndarray  # float64: certified radius after the update
    action: np.ndarray  # str: kept / trimmed / relabelled
    label_before: np.ndarray  # int64
    radius_before: np.ndarray  # float64
    n_trimmed: int
    n_relabelled: int
    order: np.ndarray  # int64 permutation in which inputs were processed


def processing_order(m: int, kind: str = "index", seed: int = 0) -> np.ndarray:
    """Order of the storage update: ``index`` (0..m-1) or ``shuffle`` (default_rng(seed))."""
    if int(m) < 0:
        raise ConfigError(f"number of inputs must be >= 0, got {m!r}")
    if kind == "index":
        return np.arange(int(m), dtype=np.int64)
    if kind == "shuffle":
        return np.random.default_rng(seed).permutation(int(m)).astype(np.int64)
    raise ConfigError(f"memory order must be 'index' or 'shuffle', got {kind!r}")


def storage_update(x_flat, labels, radii, order=None, memory: CertifiedMemory | None = None) -> MemoryResult:
    """Run the storage update over inputs ``x_flat`` [m, d] in ``order`` (default: index order).

    ``x_flat`` float32 is used as it is (no float64 copy of the whole set; each row is read in
    float64), any other type is converted to float64.

    Pass an existing ``memory`` to continue it (e.g. one shared memory for clean and
    triggered inputs); a fresh one is used otherwise.
    """
    x = np.asarray(x_flat)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    x = x.reshape(x.shape[0], -1)
    m = x.shape[0]
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    rad = np.asarray(radii, dtype=np.float64).reshape(-1)
    if lab.shape[0] != m or rad.shape[0] != m:
        raise ConfigError(f"storage_update: {m} inputs but {lab.shape[0]} labels and {rad.shape[0]} radii")
    order = np.arange(m, dtype=np.int64) if order is None else np.asarray(order).astype(np.int64).reshape(-1)
    if order.shape[0] != m or not np.array_equal(np.sort(order), np.arange(m)):
        raise ConfigError("storage_update: order must be a permutation of 0..m-1")
    if memory is None:
        memory = CertifiedMemory(x.shape[1] if m else 1, capacity=max(m, 1))
    out_label = lab.copy()
    out_radius = rad.copy()
    action = np.full(m, KEPT, dtype="<U10")
    for i in order:
        out_label[i], out_radius[i], action[i] = memory.add(x[i], lab[i], rad[i])
    return MemoryResult(
        label=out_label,
        radius=out_radius,
        action=action,
        label_before=lab,
        radius_before=rad,
        n_trimmed=int(np.sum(action == TRIMMED)),
        n_relabelled=int(np.sum(action == RELABELLED)),
        order=order,
    )
