"""Input preprocessing fitted on the training rows only: scaling, PCA and whitening."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnctl.errors import ConfigError


@dataclass
class Preprocessor:
    """X' = ((X - shift) / scale) @ projection / post_scale; fitted on the training split only."""

    method: str
    shift: np.ndarray
    scale: np.ndarray
    projection: np.ndarray | None = None  # (d, k) for pca / whiten
    post_scale: np.ndarray | None = None  # (k,) for whiten
    explained_variance_ratio: np.ndarray | None = None

    @property
    def n_outputs(self) -> int:
        return self.projection.shape[1] if self.projection is not None else self.shift.shape[0]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted transform to raw features (n, d) -> (n, n_outputs)."""
        out = (X - self.shift) / self.scale
        if self.projection is not None:
            out = out @ self.projection
        if self.post_scale is not None:
            out /= self.post_scale
        return out

    def transform_rows(self, X: np.ndarray, idx: np.ndarray, dtype, chunk: int = 16384,
                       consume: bool = False) -> np.ndarray:
        """transform(X[idx]) cast to `dtype`, computed in chunks of rows into one output array, so a
        large data set never has several full-size float64 temporaries alive at once.

        consume=True allows writing the result over X's own memory when that is safe (see
        `_compaction_buffer`): X's contents are then destroyed, and the training matrix of a large
        CSV needs no second copy of the data."""
        out = _compaction_buffer(X, idx, self.n_outputs, dtype) if consume else None
        compacted = out is not None
        if out is None:
            from nnctl.data.table import populated_empty

            out = populated_empty((len(idx), self.n_outputs), dtype)
        for start in range(0, len(idx), chunk):
            # the chunk's source rows are gathered (copied) before its output rows are written
            out[start:start + chunk] = self.transform(X[idx[start:start + chunk]])
        if compacted:  # X's rows after the output (val and test rows, already copied out) are dead
            from nnctl.data.table import release_after

            release_after(out)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for preprocess.npz."""
        out = {"method": np.array(self.method), "shift": self.shift, "scale": self.scale}
        if self.projection is not None:
            out["projection"] = self.projection
        if self.post_scale is not None:
            out["post_scale"] = self.post_scale
        if self.explained_variance_ratio is not None:
            out["explained_variance_ratio"] = self.explained_variance_ratio
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Preprocessor:
        return cls(str(arrays["method"]), arrays["shift"], arrays["scale"], arrays.get("projection"),
                   arrays.get("post_scale"), arrays.get("explained_variance_ratio"))


@dataclass
class TargetScaler:
    """Regression targets standardized on the training rows (data.target_scale: auto): the model
    learns t' = (t - shift) / scale, and its outputs are mapped back by unscale."""

    shift: np.ndarray  # (k,)
    scale: np.ndarray  # (k,)

    @classmethod
    def fit(cls, y_train: np.ndarray) -> TargetScaler:
        Y = y_train.reshape(len(y_train), -1).astype(np.float64)
        std = Y.std(axis=0)
        return cls(Y.mean(axis=0), np.where(std > 0, std, 1.0))

    def apply(self, y: np.ndarray) -> np.ndarray:
        """Targets in the units the model learns, same shape as y."""
        Y = y.reshape(len(y), len(self.shift))  # (an empty part too: reshape(0, -1) is ambiguous)
        return ((Y - self.shift) / self.scale).reshape(y.shape)

    def unscale(self, P: np.ndarray) -> np.ndarray:
        """Model outputs (n, k) in the original units, float64."""
        return P.astype(np.float64) * self.scale + self.shift

    def arrays(self) -> dict[str, np.ndarray]:
        return {"target_shift": self.shift, "target_scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays) -> TargetScaler | None:
        if "target_shift" not in arrays:
            return None
        return cls(np.asarray(arrays["target_shift"], dtype=np.float64),
                   np.asarray(arrays["target_scale"], dtype=np.float64))


def _compaction_buffer(X: np.ndarray, idx: np.ndarray, width: int, dtype) -> np.ndarray | None:
    """A C-contiguous (len(idx), width) array over the start of the memory that X's rows live in,
    or None when writing X[idx]'s transformed rows there in order could clobber a row before it is read.

    Writing output row i (bytes [i w e, (i+1) w e) from the buffer start) is safe when every row read
    later starts beyond it: with idx strictly increasing, a later row is X[idx[j]] with
    idx[j] >= j > i, which starts at least j * X.strides[0] bytes in, so row strides of at least
    w e bytes suffice (w = width, e = itemsize). The memory must belong to a plain array, or to an
    anonymous mapping of nnctl's own (data.table.populated_empty), of the same dtype: no memmap of a
    file, no foreign buffer.
    """
    import mmap

    dtype = np.dtype(dtype)
    owner = X
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    base = owner.base.obj if isinstance(owner.base, memoryview) else owner.base  # np.frombuffer wraps it
    mapped = isinstance(base, mmap.mmap) and not base.closed  # data.table.populated_empty
    own = mapped or (owner.base is None and owner.flags.owndata)
    if (not own or not owner.flags.c_contiguous
            or not owner.flags.writeable or owner.dtype != dtype or X.dtype != dtype or X.ndim != 2
            or min(X.strides) <= 0 or X.strides[0] < width * dtype.itemsize
            or owner.size < len(idx) * width or len(idx) == 0):
        return None
    if len(idx) > 1 and not bool(np.all(idx[1:] > idx[:-1])):
        return None
    return owner.reshape(-1)[:len(idx) * width].reshape(len(idx), width)


def fit_preprocessor(method: str, X: np.ndarray, pca_components: int | float | None,
                     rows: np.ndarray | None = None) -> Preprocessor:
    """Fit a preprocessing method on training features X (n, d), or on X[rows].

    With `rows`, the per-column statistics of none/center/standardize/minmax are accumulated in
    chunks, so a large data set is never copied whole; pca/whiten need the rows together.
    """
    if rows is not None:
        if method in ("none", "center", "standardize", "minmax"):
            return _fit_columnwise(method, X, rows)
        X = X[rows]
    n, d = X.shape
    zero, one = np.zeros(d), np.ones(d)
    if method == "none":
        return Preprocessor(method, zero, one)
    mean = X.mean(axis=0)
    if method == "center":
        return Preprocessor(method, mean, one)
    if method == "standardize":
        std = X.std(axis=0)  # ddof=0, as sklearn's StandardScaler
        return Preprocessor(method, mean, np.where(std > 0, std, 1.0))
    if method == "minmax":
        lo, hi = X.min(axis=0), X.max(axis=0)
        return Preprocessor(method, lo, np.where(hi > lo, hi - lo, 1.0))
    # pca / whiten: principal axes of the centred training data (SVD), as sklearn's PCA
    _, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s**2 / max(n - 1, 1)
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    k = _n_components(pca_components, ratio, min(n, d))
    Vt = _flip_signs(Vt[:k])
    post = np.sqrt(np.where(var[:k] > 0, var[:k], 1.0)) if method == "whiten" else None
    return Preprocessor(method, mean, one, Vt.T.copy(), post, ratio[:k])


def _fit_columnwise(method: str, X: np.ndarray, rows: np.ndarray, chunk: int = 16384) -> Preprocessor:
    d = X.shape[1]
    zero, one = np.zeros(d), np.ones(d)
    if method == "none":
        return Preprocessor(method, zero, one)
    def parts():  # one chunk of rows at a time, never the whole training matrix
        for i in range(0, len(rows), chunk):
            yield X[rows[i:i + chunk]].astype(np.float64, copy=False)

    if method == "minmax":
        lo = np.min([p.min(axis=0) for p in parts()], axis=0)
        hi = np.max([p.max(axis=0) for p in parts()], axis=0)
        return Preprocessor(method, lo, np.where(hi > lo, hi - lo, 1.0))
    mean = np.sum([p.sum(axis=0) for p in parts()], axis=0) / len(rows)
    if method == "center":
        return Preprocessor(method, mean, one)
    # two passes (mean, then squared deviations): as exact as np.std, and never a full-size temporary
    var = np.sum([((p - mean) ** 2).sum(axis=0) for p in parts()], axis=0) / len(rows)
    std = np.sqrt(var)  # ddof=0, as sklearn's StandardScaler
    return Preprocessor(method, mean, np.where(std > 0, std, 1.0))


def _n_components(spec, ratio, max_k) -> int:
    if spec is None:
        return max_k
    if isinstance(spec, int):
        if spec > max_k:
            raise ConfigError(f"data.pca_components is {spec}, but the training data has only {max_k} components")
        return spec
    return int(min(np.searchsorted(np.cumsum(ratio), spec - 1e-12) + 1, max_k))  # variance fraction


def _flip_signs(Vt):
    # deterministic signs: the largest-magnitude entry of each axis is positive
    signs = np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])
    return Vt * np.where(signs == 0, 1, signs)[:, None]
