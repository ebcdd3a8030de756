"""Pairwise-complete statistics between two sets of vectors, computed as masked matrix products.

Every similarity in the package (Pearson correlation, cosine, linear kernel, Euclidean
distance) between vectors ``x_a`` and ``y_b`` over a contracted dim (usually ``unit``) is a
function of six sums over the entries where *both* vectors are finite (pairwise complete):

    n = sum w,  sx = sum w x,  sy = sum w y,  sxx = sum w x^2,  syy = sum w y^2,  sxy = sum w x y

with optional non-negative weights ``w`` on the contracted dim (bootstrap counts). With the
NaN masks ``mx``, ``my`` and zero-filled arrays ``x0``, ``y0`` these are matrix products,
e.g. ``sx = (w x0) @ my.T``, so batch dims broadcast and the work is BLAS-bound. Per block
the cheapest exact path is taken: no NaN at all, or one NaN pattern shared by all vectors
(e.g. the units untracked in a session, for an RSM), where ``sxy`` is the only product; a
pattern shared by every batch element (the same units untracked for every stimulus, for
PV correlations), where the mask products are single large GEMMs; otherwise two stacked
products of masks and values. A self-comparison (``y`` a renamed ``x``) is computed once.

Dask-backed inputs are processed block by block with :func:`dask.array.blockwise`: each
chunk of the contracted dim gives partial sums that a tree reduction adds, so data are
streamed and never loaded whole. Best chunking: split ``unit`` (about 1,000 units per
chunk) and keep ``time`` and ``stimulus`` whole; other layouts are rechunked as needed.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

__all__ = [
    "STATS",
    "pairwise_sums",
    "count",
    "pearson",
    "cosine",
    "linear_kernel",
    "sq_euclidean",
]

STATS = ("n", "sx", "sy", "sxx", "syy", "sxy")


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _unit_shift(x: np.ndarray, y: np.ndarray, same: bool) -> tuple[np.ndarray, np.ndarray]:
    """Subtract from both operands the mean of ``x`` over its vectors, per contracted entry.

    A common shift per contracted entry leaves differences ``x - y`` and centred Gram
    matrices unchanged and removes the cancellation in ``sxx + syy - 2 sxy``.
    """
    ok = ~np.isnan(x)
    cnt = ok.sum(axis=-2, keepdims=True)
    c = np.where(ok, x, 0).sum(axis=-2, keepdims=True) / np.maximum(cnt, 1)
    xs = x - c
    return xs, (xs if same else y - c)


def _blas_ready(a: np.ndarray) -> np.ndarray:
    """``a`` itself when its matrices (last two axes) suit BLAS, else a C-ordered copy."""
    if a.ndim >= 2 and a.itemsize in (a.strides[-1], a.strides[-2]):
        return a
    return np.ascontiguousarray(a)


def _shared(m: np.ndarray) -> bool:
    """True when every vector (axis -2) has the same NaN pattern."""
    return bool((m == m[..., :1, :]).all())


def _common_sums(x, y, v, w, same):
    """Sums when every vector of a block shares one validity pattern ``v`` (..., U)."""
    if v is None:
        x0 = x
        n = np.asarray(float(x.shape[-1]) if w is None else w.sum(), dtype=x.dtype)
    else:
        x0 = np.where(v[..., None, :], x, 0)
        n = (v if w is None else v * w).sum(axis=-1, dtype=x.dtype)[..., None, None]
    y0 = x0 if same else (y if v is None else np.where(v[..., None, :], y, 0))
    xw = x0 if w is None else x0 * w
    sx = xw.sum(axis=-1)[..., :, None]
    sxx = np.einsum("...i,...i->...", xw, x0)[..., :, None]
    if same:
        sy, syy = _t(sx), _t(sxx)
    else:
        yw = y0 if w is None else y0 * w
        sy = yw.sum(axis=-1)[..., None, :]
        syy = np.einsum("...i,...i->...", yw, y0)[..., None, :]
    sxy = np.matmul(xw, _t(y0))
    return n, sx, sy, sxx, syy, sxy


def _general_sums(x, y, mx, my, w, same):
    """Sums for arbitrary NaN patterns: stacked matrix products of masks and values."""
    a, b = x.shape[-2], y.shape[-2]
    fx = (~mx).astype(x.dtype)
    x0 = np.where(mx, 0, x)
    fy, y0 = (fx, x0) if same else ((~my).astype(y.dtype), np.where(my, 0, y))
    xw, fxw = (x0, fx) if w is None else (x0 * w, fx * w)
    left = np.concatenate(np.broadcast_arrays(fxw, xw), axis=-2)
    right = np.concatenate(np.broadcast_arrays(fy, y0, y0 * y0), axis=-2)
    m = np.matmul(left, _t(right))
    n, sy, syy = m[..., :a, :b], m[..., :a, b : 2 * b], m[..., :a, 2 * b :]
    sx, sxy = m[..., a:, :b], m[..., a:, b : 2 * b]
    sxx = _t(syy) if same else np.matmul(xw * x0, _t(fy))
    return n, sx, sy, sxx, syy, sxy


def _mm2(a: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """``a @ b2.T`` for a (..., m, U) stack and one (k, U) matrix, as a single GEMM."""
    lead = a.shape[:-1]
    return (a.reshape(-1, a.shape[-1]) @ b2.T).reshape(lead + (b2.shape[0],))


def _batch_shared_sums(x, y, mx0, my0, w, same):
    """Sums when the NaN pattern is the same in every batch element (e.g. units untracked
    in a session are NaN for all stimuli): only ``sxy`` needs a product per batch element;
    the mask products are single large GEMMs. ``mx0`` (a, U), ``my0`` (b, U)."""
    fx = (~mx0).astype(x.dtype)
    x0 = np.where(mx0, 0, x)
    fy, y0 = (fx, x0) if same else ((~my0).astype(y.dtype), np.where(my0, 0, y))
    xw, fxw = (x0, fx) if w is None else (x0 * w, fx * w)
    n = fxw @ fy.T
    sx = _mm2(xw, fy)
    sxx = _mm2(xw * x0, fy)
    if same:
        sy, syy = _t(sx), _t(sxx)
    else:
        sy = _t(_mm2(y0, fxw))
        syy = _t(_mm2(y0 * y0, fxw))
    sxy = np.matmul(xw, _t(y0))
    return n, sx, sy, sxx, syy, sxy


def _batch_shared(m: np.ndarray) -> bool:
    """True when the NaN pattern ``m`` (..., v, U) is the same for every batch element."""
    if m.ndim <= 2:
        return True
    flat = m.reshape((-1,) + m.shape[-2:])
    return bool((flat == flat[:1]).all())


def _sums(x, y, w, unit_shift, same):
    if unit_shift:
        x, y = _unit_shift(x, y, same)
    x = _blas_ready(x)
    y = x if same else _blas_ready(y)
    mx = np.isnan(x)
    my = mx if same else np.isnan(y)
    if not mx.any() and not my.any():
        return _common_sums(x, y, None, w, same)
    if _shared(mx) and (same or _shared(my)):
        return _common_sums(x, y, ~mx[..., 0, :] & ~my[..., 0, :], w, same)
    if _batch_shared(mx) and (same or _batch_shared(my)):
        mx0 = mx.reshape((-1,) + mx.shape[-2:])[0]
        my0 = mx0 if same else my.reshape((-1,) + my.shape[-2:])[0]
        return _batch_shared_sums(x, y, mx0, my0, w, same)
    return _general_sums(x, y, mx, my, w, same)


_SAME_STATS = (0, 1, 3, 5)


def _full_stats(s4, lib):
    """The six stats from ``n, sx, sxx, sxy`` of a self-product (``sy = sx^T`` etc.)."""
    n, sx, sxx, sxy = (s4[k] for k in range(4))
    return lib.stack([n, sx, lib.swapaxes(sx, -1, -2), sxx, lib.swapaxes(sxx, -1, -2), sxy])


# bytes of one operand slice processed at a time (temporaries are a few times this)
_SLICE_BYTES = 32 * 2**20


def _kernel(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, unit_shift: bool) -> np.ndarray:
    """The six sums for one block.

    Parameters
    ----------
    x : ndarray, shape (..., a, U)
    y : ndarray, shape (..., b, U)
        Batch dims broadcast against each other. ``y is x`` is recognised and saves work.
    w : ndarray, shape (U,), optional
        Weights on the contracted entries.
    unit_shift : bool
        Subtract the mean of ``x`` over its vectors from both operands first.

    Returns
    -------
    ndarray, shape (6, ..., a, b) or (4, ..., a, b)
        ``n, sx, sy, sxx, syy, sxy`` on the first axis (for ``y is x`` only
        ``n, sx, sxx, sxy``; see :func:`_full_stats`), in the compute dtype (float32 for
        float32 input, else float64). The leading batch dim is processed in slices so
        that temporaries stay near ``_SLICE_BYTES``.
    """
    same = x is y
    dtype = np.result_type(x.dtype, y.dtype, np.float32)
    x = np.asarray(x, dtype=dtype)
    y = x if same else np.asarray(y, dtype=dtype)
    if w is not None:
        w = np.asarray(w, dtype=dtype)
    bshape = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    a, b, u = x.shape[-2], y.shape[-2], x.shape[-1]
    # for y is x, sy and syy are transposes of sx and sxx and are not stored
    keep = _SAME_STATS if same else range(6)
    out = np.empty((len(keep),) + bshape + (a, b), dtype=dtype)

    def put(sl, sums):
        for k, i in enumerate(keep):
            out[(k,) + sl] = sums[i]

    if not bshape:
        put((), _sums(x, y, w, unit_shift, same))
        return out
    per = max(1, int(np.prod(bshape[1:], dtype=np.int64)) * (a + b) * u * x.itemsize)
    step = max(1, _SLICE_BYTES // per)
    for i in range(0, bshape[0], step):
        sl = slice(i, i + step)
        xs = x[sl] if x.shape[0] > 1 else x
        ys = xs if same else (y[sl] if y.shape[0] > 1 else y)
        put((sl,), _sums(xs, ys, w, unit_shift, same))
    return out


def _block(x, y, w=None, *, unit_shift=False):
    return _kernel(x, y, w, unit_shift)[None]


def _block_same(x, w=None, *, unit_shift=False):
    return _kernel(x, x, w, unit_shift)[None]


def _vector_shift(arr: xr.DataArray, over: str) -> xr.DataArray:
    """Subtract from each vector its mean over (the first block of) the contracted dim.

    Pearson statistics are invariant to a per-vector shift; shifting by an estimate of the
    mean keeps ``sxx - sx^2 / n`` free of cancellation. For dask arrays the estimate comes
    from the first chunk along ``over`` only, so the data are not read twice.
    """
    if arr.chunks is not None:
        k = arr.chunksizes[over][0]
        head = arr.isel({over: slice(0, k)})
    else:
        head = arr
    c = head.mean(over, skipna=True).fillna(0.0)
    return arr - c


def pairwise_sums(
    x: xr.DataArray,
    y: xr.DataArray,
    dim_x: str,
    dim_y: str,
    over: str = "unit",
    *,
    weights: xr.DataArray | np.ndarray | None = None,
    shift: str | None = None,
) -> xr.DataArray:
    """Pairwise-complete sums between the vectors of ``x`` (along ``dim_x``) and ``y``.

    Parameters
    ----------
    x : xarray.DataArray
        Dims ``dim_x``, ``over`` and any batch dims.
    y : xarray.DataArray
        Dims ``dim_y`` (a different name from ``dim_x``), ``over`` and batch dims; batch dims
        of ``x`` and ``y`` broadcast (a dim may be in only one of them).
    dim_x, dim_y : str
        The vector dims; the result has both.
    over : str
        The contracted dim (entries of each vector), e.g. ``"unit"``.
    weights : array-like, shape (len(over),), optional
        Non-negative weight of each entry (e.g. bootstrap counts).
    shift : {None, "vector", "unit"}
        ``"vector"``: centre each vector by its mean first (for Pearson statistics).
        ``"unit"``: subtract, per entry of ``over``, the mean of ``x`` over its vectors from
        both operands (for Euclidean distances and centred Gram matrices). ``None``: raw.

    Returns
    -------
    xarray.DataArray
        Dims (``stat``, batch..., dim_x, dim_y) with ``stat`` = ``STATS``, float64; lazy
        (dask) when either input is. Coordinates of both inputs are kept.
    """
    if dim_x == dim_y:
        raise ValueError("dim_x and dim_y must differ; rename one operand first")
    for arr, d in ((x, dim_x), (y, dim_y)):
        if d not in arr.dims or over not in arr.dims:
            raise ValueError(f"operand lacks dims {d!r} and {over!r}: has {arr.dims}")
    # y a renamed view of x (e.g. ref_copy): compute the shared operand once
    same = x.data is y.data and y.dims == tuple(dim_y if d == dim_x else d for d in x.dims)
    coord_src = (x, y)
    if shift == "vector":
        x = _vector_shift(x, over)
        y = x.rename({dim_x: dim_y}) if same else _vector_shift(y, over)
    elif shift not in (None, "unit"):
        raise ValueError(f"shift must be None, 'vector' or 'unit', got {shift!r}")
    batch = [d for d in x.dims if d not in (dim_x, over)]
    batch += [d for d in y.dims if d not in (dim_y, over) and d not in batch]
    if dim_y in x.dims or dim_x in y.dims:
        raise ValueError("each vector dim must belong to one operand only")
    xe = x.expand_dims([d for d in batch if d not in x.dims]).transpose(*batch, dim_x, over)
    ye = y.expand_dims([d for d in batch if d not in y.dims]).transpose(*batch, dim_y, over)
    w = None
    if weights is not None:
        w = np.asarray(weights.values if isinstance(weights, xr.DataArray) else weights)
        if w.shape != (x.sizes[over],):
            raise ValueError(f"weights must have shape ({x.sizes[over]},), got {w.shape}")
    unit_shift = shift == "unit"
    if xe.chunks is None and ye.chunks is None:
        xd = xe.data
        data = _kernel(xd, xd if same else ye.data, w, unit_shift).astype(np.float64, copy=False)
        if same:
            data = _full_stats(data, np)
    else:
        xd = xe.data
        data = _dask_sums(xd, xd if same else ye.data, w, unit_shift, len(batch))
    coords = {}
    for src in coord_src:
        for name, c in src.coords.items():
            if over not in c.dims and name not in coords:
                coords[name] = c
    dims = ["stat"] + batch + [dim_x, dim_y]
    eps = float(np.finfo(np.result_type(x.dtype, y.dtype, np.float32)).eps)
    return xr.DataArray(data, dims=dims, coords={**coords, "stat": list(STATS)}, attrs={"eps": eps})


# largest input block after merging the vector axis into one chunk
_INPUT_BYTES = 128 * 2**20


def _whole_vectors(a: da.Array) -> da.Array:
    """Rechunk so that the vector axis (-2) is one chunk, keeping blocks near
    ``_INPUT_BYTES`` (other axes are re-split by dask's "auto" rule when needed, e.g. for
    stores written one time point per chunk)."""
    ax = a.ndim - 2
    if a.numblocks[ax] == 1:
        return a
    others = [max(c) for i, c in enumerate(a.chunks) if i != ax]
    merged = int(np.prod(others, dtype=np.int64)) * a.shape[ax] * a.dtype.itemsize
    if merged <= _INPUT_BYTES:
        return a.rechunk({ax: -1})
    spec = {i: ("auto" if i != ax else -1) for i in range(a.ndim)}
    return a.rechunk(spec, block_size_limit=_INPUT_BYTES)


# largest partial-sum block of one contracted chunk; batch chunks are split to stay below
_BLOCK_BYTES = 64 * 2**20


def _split_batch(xd, yd, nbatch: int, nstat: int):
    """Split batch chunks so that each block of partial sums stays under ``_BLOCK_BYTES``.

    Partial sums of every contracted chunk are held until the tree reduction adds them;
    splitting the (broadcast) batch chunks bounds them. Splitting a chunk is cheap.
    """
    if yd is not None:
        yd = _whole_vectors(da.asarray(yd))
    a = xd.shape[-2]
    b = a if yd is None else yd.shape[-2]
    chunks = [max(xd.chunksize[i], 1 if yd is None else yd.chunksize[i]) for i in range(nbatch)]
    itemsize = np.result_type(xd.dtype, np.float32).itemsize
    for i in range(nbatch):
        while chunks[i] > 1 and np.prod(chunks) * a * b * nstat * itemsize > _BLOCK_BYTES:
            chunks[i] = (chunks[i] + 1) // 2
    new = {i: c for i, c in enumerate(chunks)}
    xd = xd.rechunk({i: c for i, c in new.items() if xd.shape[i] > 1})
    if yd is not None:
        yd = yd.rechunk({i: c for i, c in new.items() if yd.shape[i] > 1})
    return xd, yd


def _dask_sums(xd, yd, w, unit_shift: bool, nbatch: int):
    dtype = np.result_type(xd.dtype, yd.dtype, np.float32)
    same = xd is yd
    # whole vectors per block: one kernel call per block of the contracted dim
    xd = _whole_vectors(da.asarray(xd))
    ib = tuple(f"b{i}" for i in range(nbatch))
    wargs = [] if w is None else [da.from_array(w, chunks=(xd.chunks[-1],)), ("U",)]
    kw = dict(
        adjust_chunks={"U": 1},
        dtype=dtype,
        unit_shift=unit_shift,
        meta=np.empty((0,) * (nbatch + 4), dtype=dtype),
    )
    xd, yd = _split_batch(xd, None if same else yd, nbatch, len(_SAME_STATS) if same else 6)
    out_ind = ("U", "K") + ib + ("A", "B")
    if same:
        # pass the operand once, so that fused upstream work is not done twice
        out = da.blockwise(
            _block_same,
            out_ind,
            xd,
            ib + ("A", "U"),
            *wargs,
            new_axes={"K": len(_SAME_STATS), "B": xd.shape[-2]},
            **kw,
        )
    else:
        out = da.blockwise(
            _block,
            out_ind,
            xd,
            ib + ("A", "U"),
            yd,
            ib + ("B", "U"),
            *wargs,
            new_axes={"K": 6},
            **kw,
        )
    total = out.sum(axis=0, split_every=2).astype(np.float64)
    return _full_stats(total, da) if same else total


def count(s: xr.DataArray) -> xr.DataArray:
    """Number of shared entries ``n`` from :func:`pairwise_sums` (unweighted), as integers."""
    return s.sel(stat="n", drop=True).round().astype(np.int64)


def _get(s: xr.DataArray, name: str) -> xr.DataArray:
    return s.sel(stat=name, drop=True)


def _valid_var(var: xr.DataArray, sq: xr.DataArray, eps: float) -> xr.DataArray:
    """Variance-like sums that are zero up to rounding (relative to ``sq``) count as zero."""
    return var.where(var > 1e3 * eps * sq)


def pearson(s: xr.DataArray) -> xr.DataArray:
    """Pearson correlation from :func:`pairwise_sums` (computed with ``shift="vector"``).

    NaN where fewer than 2 entries are shared or either vector is constant; clipped to
    [-1, 1].
    """
    n, sx, sy = _get(s, "n"), _get(s, "sx"), _get(s, "sy")
    sxx, syy, sxy = _get(s, "sxx"), _get(s, "syy"), _get(s, "sxy")
    nn = n.where(n >= 2)
    eps = s.attrs.get("eps", float(np.finfo(np.float64).eps))
    vx = _valid_var(sxx - sx**2 / nn, sxx, eps)
    vy = _valid_var(syy - sy**2 / nn, syy, eps)
    r = (sxy - sx * sy / nn) / np.sqrt(vx * vy)
    return r.clip(-1.0, 1.0)


def cosine(s: xr.DataArray) -> xr.DataArray:
    """Cosine similarity ``sxy / sqrt(sxx syy)`` (raw sums, ``shift=None``)."""
    sxx, syy = _get(s, "sxx"), _get(s, "syy")
    den = np.sqrt(sxx.where(sxx > 0) * syy.where(syy > 0))
    return (_get(s, "sxy") / den).clip(-1.0, 1.0)


def linear_kernel(s: xr.DataArray) -> xr.DataArray:
    """Linear kernel with 1/N normalisation, ``sxy / n`` (raw sums, ``shift=None``)."""
    n = _get(s, "n")
    return _get(s, "sxy") / n.where(n > 0)


def sq_euclidean(s: xr.DataArray) -> xr.DataArray:
    """Squared Euclidean distance over shared entries, ``sxx + syy - 2 sxy`` (>= 0).

    Use sums from ``shift="unit"`` (or ``None``). Values within rounding of zero (relative
    to ``sxx + syy``) are set to 0; NaN where no entry is shared.
    """
    n = _get(s, "n")
    sq = _get(s, "sxx") + _get(s, "syy")
    d2 = sq - 2 * _get(s, "sxy")
    eps = s.attrs.get("eps", float(np.finfo(np.float64).eps))
    return d2.where(d2 > 1e3 * eps * sq, 0.0).where(n > 0)
