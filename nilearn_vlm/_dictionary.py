"""The dictionary learner of :class:`~nilearn_vlm.SparseAtoms` (private solver).

Each *unit* is one sample. With the units standardised (centred, unit l2
norm over scans) into the rows of ``X (n_units, n_scans)``, the learner
minimises scikit-learn ``DictionaryLearning``'s objective::

    F(Z, D) = 0.5 * ||X - Z D||_F^2 + alpha * ||Z||_1,   ||D_j||_2 <= 1

with ``D (n_atoms, n_scans)`` the atoms (time courses) and ``Z (n_units,
n_atoms)`` the sparse codes; the codes are held transposed, ``(n_atoms,
n_units)``, the loadings.

* Start (``init="varimax"``): the exact top ``n_atoms`` right singular vectors
  (Gram matrix of the smaller side in float64, LAPACK ``eigh`` restricted to
  the top eigenpairs), rotated by varimax so that the unit loadings are as
  sparse as an orthogonal rotation allows. ``init="svd"`` is scikit-learn's
  start (singular vectors scaled by the singular values).
* Codes: exact KKT screening of the units at zero, then FISTA (one
  ``(k, k) @ (k, n_active)`` product per step) or vectorised coordinate
  descent, warm-started between iterations.
* Atoms: scikit-learn's block-coordinate pass (unused atoms restart on a
  random unit plus 1% noise).
* Stopping rule: ``|F_{t-1} - F_t| <= tol * F_t``, where ``F_t = F(Z_t,
  D_{t+1})`` comes for free from the atom update's sufficient statistics;
  never declared in an iteration that restarted an atom.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from nilearn_vlm._backend import NUMPY, get_backend

_CHUNK = 8192


def _top_right_singular(samples, k, chunk=_CHUNK):
    """Exact top-``k`` singular values and right singular vectors (rows) of ``samples``."""
    n, T = samples.shape
    k = min(k, n, T)
    if T <= n:
        G = np.zeros((T, T))
        for s in range(0, n, chunk):
            b = samples[s : s + chunk]
            G += (b.T @ b).astype(np.float64)
        w, V = linalg.eigh(G, subset_by_index=[T - k, T - 1], driver="evr")
        order = np.argsort(w)[::-1]
        return np.sqrt(np.maximum(w[order], 0.0)), V[:, order].T.copy()
    G = (samples @ samples.T).astype(np.float64)
    w, U = linalg.eigh(G, subset_by_index=[n - k, n - 1], driver="evr")
    order = np.argsort(w)[::-1]
    s = np.sqrt(np.maximum(w[order], 0.0))
    Vt = (U[:, order].T @ samples.astype(np.float64)) / np.where(s > 0, s, 1.0)[:, None]
    return s, Vt


def varimax(L, max_iter=50, tol=1e-6):
    """Orthogonal varimax rotation ``R (k, k)`` of loadings ``L (n, k)`` (Kaiser 1958).

    The SVD algorithm: maximises the variance of the squared loadings of each
    column of ``L @ R``.
    """
    n, k = L.shape
    R = np.eye(k)
    crit = 0.0
    for _ in range(max_iter):
        LR = L @ R
        u, s, vt = np.linalg.svd(L.T @ (LR**3 - LR * ((LR**2).sum(0) / n)))
        R = u @ vt
        old, crit = crit, s.sum()
        if old and crit < old * (1 + tol):
            break
    return R


def _initial_atoms(samples, n_atoms, init, rng):
    """Start of the atoms: ``"varimax"``, ``"svd"`` or an array (n_atoms, n_scans)."""
    if not isinstance(init, str):
        D = np.array(init, dtype=np.float64)
        if D.shape != (n_atoms, samples.shape[1]):
            raise ValueError(f"init has shape {D.shape}; give (n_atoms, n_scans) = "
                             f"{(n_atoms, samples.shape[1])}.")
        return D
    if init not in ("varimax", "svd"):
        raise ValueError(f"init={init!r} is not supported; use 'varimax', 'svd' or an array of atoms.")
    s, Vt = _top_right_singular(samples, n_atoms)
    if init == "svd":
        D = s[:, None] * Vt
    else:
        L = (samples @ Vt.T.astype(samples.dtype)).astype(np.float64)
        R = varimax(L)
        LR = L @ R
        sign = np.sign((LR**3).sum(0))
        sign[sign == 0] = 1.0
        D = (R.T @ Vt) * sign[:, None]
    if len(D) < n_atoms:  # rank-deficient input: pad with random unit atoms
        extra = rng.standard_normal((n_atoms - len(D), samples.shape[1]))
        D = np.vstack([D, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    return np.ascontiguousarray(D)


def lasso_codes(C, G, alpha, Z=None, max_iter=1000, tol=1e-4, solver="fista", bk=NUMPY):
    """Lasso codes of all units on fixed atoms, given ``C = D X^T`` and ``G = D D^T``.

    Units whose code is zero and whose residual correlations ``|C - G Z|``
    are all at most ``alpha`` satisfy the KKT conditions at zero and are left
    out. ``"fista"``: accelerated proximal gradient (Beck & Teboulle 2009),
    step ``1 / lambda_max(G)``; ``"cd"``: cyclic coordinate descent over the
    atoms, each for all units at once. Both stop when the largest change of a
    step is at most ``tol * max|Z|``. ``C`` and ``Z`` may live on the device
    of the array backend ``bk`` (:mod:`nilearn_vlm._backend`; FISTA runs
    there, coordinate descent on NumPy); ``G`` is a NumPy array.

    Returns
    -------
    Z : ndarray (k, n) float64 (on ``bk``'s device)
    n_steps : int
    """
    if bk is not NUMPY and solver == "cd":
        Z, steps = lasso_codes(bk.to_numpy(C), G, alpha, None if Z is None else bk.to_numpy(Z),
                               max_iter, tol, solver)
        return bk.asarray(Z), steps
    k, n = C.shape
    Z = bk.zeros((k, n), np.float64) if Z is None else bk.copy(Z, np.float64)
    Gd = bk.asarray(G)
    R = C - Gd @ Z
    active = bk.flatnonzero((Z != 0).any(0) | (bk.absmax0(R) > alpha))
    if active.shape[0] == 0:
        return Z, 0
    Za = bk.contiguous(Z[:, active])
    steps = 0
    if solver == "fista":
        Ca = bk.contiguous(C[:, active])
        L = float(np.linalg.eigvalsh(G)[-1])
        if L <= 0:
            return Z, 0
        Y, t = bk.copy(Za, np.float64), 1.0
        for steps in range(1, max_iter + 1):
            V = Y - (Gd @ Y - Ca) / L
            new = bk.soft_threshold(V, alpha / L)
            t_new = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
            delta = new - Za
            Y = new + ((t - 1.0) / t_new) * delta
            Za, t = new, t_new
            if float(bk.xp.abs(delta).max()) <= tol * max(float(bk.xp.abs(Za).max()), 1e-12):
                break
    elif solver == "cd":
        Ra = np.ascontiguousarray(R[:, active])
        diag = np.diag(G).copy()
        cols = [np.ascontiguousarray(G[:, j : j + 1]) for j in range(k)]
        for steps in range(1, max_iter + 1):
            biggest = 0.0
            for j in range(k):
                if diag[j] <= 0:
                    continue
                rho = Ra[j] + diag[j] * Za[j]
                new = (np.maximum(rho - alpha, 0.0) + np.minimum(rho + alpha, 0.0)) / diag[j]
                delta = new - Za[j]
                m = float(np.abs(delta).max())
                if m > 0:
                    Ra -= cols[j] * delta
                    Za[j] = new
                    biggest = max(biggest, m)
            if biggest <= tol * max(float(np.abs(Za).max()), 1e-12):
                break
    else:
        raise ValueError(f"code solver {solver!r} is not supported; use 'fista' or 'cd'.")
    Z[:, active] = Za
    return Z, steps


def _correlations(samples, D, bk=NUMPY, dtype=None):
    """``C = D X^T`` (k, n) in float64, the product in the samples' precision (``dtype``)."""
    dtype = samples.dtype if dtype is None else dtype
    return bk.astype(bk.asarray(D.astype(dtype)) @ samples.T, np.float64)


def _update_atoms(D, A, B, rng, samples):
    """One block-coordinate pass on the atoms (scikit-learn's ``_update_dict``), in place.

    Returns the indices of restarted (unused) atoms.
    """
    restarted = []
    for j in range(len(D)):
        if A[j, j] > 1e-6:
            D[j] += (B[:, j] - A[j] @ D) / A[j, j]
        else:
            new = samples[rng.choice(len(samples))].astype(np.float64)
            D[j] = new + rng.normal(0, 0.01 * (new.std() or 1), new.size)
            restarted.append(j)
        D[j] /= max(float(np.linalg.norm(D[j])), 1.0)
    return restarted


def _objective(samples, Z, D, alpha, chunk=_CHUNK, bk=NUMPY):
    """``F(Z, D)`` computed from the data, in float64."""
    tot = 0.0
    D = bk.asarray(D)
    for s in range(0, samples.shape[0], chunk):
        R = bk.astype(samples[s : s + chunk], np.float64) - Z[:, s : s + chunk].T @ D
        tot += 0.5 * float((R * R).sum())
    return tot + alpha * float(bk.xp.abs(Z).sum())


@dataclass
class DictionaryFit:
    """The result of :func:`~nilearn_vlm.decomposition.learn_dictionary`.

    Attributes
    ----------
    atoms : ndarray (n_atoms, n_scans)
        Rows of l2 norm at most 1.
    codes : ndarray (n_atoms, n_units)
        The loadings (sparse), solved for the final atoms.
    n_iter : int
        Alternations run.
    converged : bool
        The stopping rule was met before ``max_iter``.
    tol_reached : float
        Relative change of the objective at the last alternation.
    objective : float
        ``F(codes, atoms)`` of the returned pair.
    trace : list of dict
        Per alternation: ``it``, ``objective``, ``rel_change``, ``code_steps``,
        ``restarted``, ``cpu`` (process seconds since the start).
    """

    atoms: np.ndarray
    codes: np.ndarray
    n_iter: int
    converged: bool
    tol_reached: float
    objective: float
    trace: list = field(default_factory=list)


def learn_dictionary(samples, n_atoms, alpha, *, init="varimax", max_iter=500, tol=1e-5, code_tol=1e-4,
                     code_solver="fista", random_state=None, callback=None, warn=True, backend="numpy",
                     device="cpu"):
    """Batch dictionary learning of units, run until the objective settles.

    Minimises ``F(Z, D) = 0.5 ||X - Z D||^2 + alpha ||Z||_1`` with atoms of
    norm at most 1 (the objective of
    :class:`sklearn.decomposition.DictionaryLearning`, the units as samples)
    by alternating lasso codes (exact screening, then FISTA or coordinate
    descent, warm-started) and scikit-learn's block-coordinate atom update.

    Parameters
    ----------
    samples : ndarray of shape (n_units, n_scans)
        Standardised units (one per row), float32 or float64; the products
        run in this precision, codes and atoms in float64.
    n_atoms : int
    alpha : float
    init : {"varimax", "svd"} or ndarray of shape (n_atoms, n_scans), default="varimax"
        ``"varimax"``: varimax rotation of the exact top ``n_atoms`` right
        singular vectors; ``"svd"``: scikit-learn's start (the same vectors
        scaled by the singular values), which follows ``DictionaryLearning``'s
        path.
    max_iter : int, default=500
        A cap; reaching it warns (:class:`~sklearn.exceptions.ConvergenceWarning`).
    tol : float, default=1e-5
        The stopping rule: stop when ``|F_{t-1} - F_t| <= tol * F_t``.
    code_tol : float, default=1e-4
        Tolerance of the code solver (largest code change relative to the
        largest code).
    code_solver : {"fista", "cd"}, default="fista"
    random_state : int, RandomState or None, default=None
        Seeds the restarts of unused atoms.
    callback : callable or None
        Called with each trace row (a dict) after each alternation.
    warn : bool, default=True
    backend : {"numpy", "torch"} or backend object, default="numpy"
        Array backend (:mod:`nilearn_vlm._backend`) of the products with the
        samples (``D X^T``, ``X^T Z^T``, the objective) and of the FISTA
        codes: the samples go to the device once, the codes stay there, and
        only ``(k, k)`` and ``(n_scans, k)`` statistics come back for the atom
        update (NumPy). The start (``init``) is computed with NumPy.
    device : {"cpu", "cuda", "cuda:N"}, default="cpu"
        Device of the torch backend (a CUDA device implies torch).

    Returns
    -------
    DictionaryFit

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.decomposition import learn_dictionary
    >>> X = np.random.default_rng(0).standard_normal((200, 50))
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> fit = learn_dictionary(X, 5, alpha=0.1, random_state=0)
    >>> fit.atoms.shape, fit.codes.shape, fit.converged
    ((5, 50), (5, 200), True)
    """
    c0 = time.process_time()
    bk = get_backend(backend, device)
    rng = check_random_state(random_state)
    n = samples.shape[0]
    D = _initial_atoms(samples, n_atoms, init, rng)
    x2 = sum(float((samples[s : s + _CHUNK].astype(np.float64) ** 2).sum()) for s in range(0, n, _CHUNK))
    dt = samples.dtype
    S = bk.asarray(samples)  # the samples on the device, once (the same array on NumPy)
    Z = bk.zeros((n_atoms, n), np.float64)
    trace, f_prev, rel, converged, it = [], np.inf, np.inf, False, 0
    for it in range(1, max_iter + 1):
        Z, steps = lasso_codes(_correlations(S, D, bk, dt), D @ D.T, alpha, Z, tol=code_tol, solver=code_solver,
                               bk=bk)
        A = bk.to_numpy(Z @ Z.T)
        B = bk.to_numpy(bk.astype(S.T @ bk.astype(Z.T, dt), np.float64))
        restarted = _update_atoms(D, A, B, rng, samples)
        if restarted:
            Z[restarted] = 0.0
            A = bk.to_numpy(Z @ Z.T)
            B[:, restarted] = 0.0
        f = 0.5 * (x2 - 2 * float((B * D.T).sum()) + float((A * (D @ D.T)).sum())) + alpha * float(bk.xp.abs(Z).sum())
        rel = (f_prev - f) / f if np.isfinite(f_prev) and f > 0 else (0.0 if f == 0 else np.inf)
        f_prev = f
        row = dict(it=it, objective=f, rel_change=rel, code_steps=steps, restarted=len(restarted),
                   cpu=time.process_time() - c0)
        trace.append(row)
        if callback is not None:
            callback(row)
        if abs(rel) <= tol and not restarted:
            converged = True
            break
    Z, _ = lasso_codes(_correlations(S, D, bk, dt), D @ D.T, alpha, Z, tol=code_tol, solver=code_solver, bk=bk)
    objective = _objective(S, Z, D, alpha, bk=bk)
    Z = bk.to_numpy(Z)
    if warn and not converged:
        warnings.warn(
            f"dictionary learning reached max_iter={max_iter} with a relative objective change of "
            f"{abs(rel):.1e} > tol={tol:.0e}; raise max_iter (or tol).", ConvergenceWarning, stacklevel=2)
    return DictionaryFit(D, Z, it, converged, float(abs(rel)), objective, trace)


def sparse_codes(samples, atoms, alpha, init=None, max_iter=1000, tol=1e-6, solver="fista"):
    """Lasso codes of many samples on a fixed dictionary (vectorised over samples).

    Solves, for every row ``x`` of ``samples``,
    ``min_c 0.5 * ||x - c @ atoms||^2 + alpha * ||c||_1``, the objective of
    :func:`sklearn.decomposition.sparse_encode` with ``algorithm="lasso_cd"``:
    exact screening of the samples whose code is zero, then FISTA or
    coordinate descent on all the others at once.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_times)
    atoms : ndarray of shape (n_atoms, n_times)
    alpha : float
    init : ndarray of shape (n_samples, n_atoms), default=None
        Warm start.
    max_iter : int, default=1000
        Steps (FISTA) or sweeps over the atoms (coordinate descent).
    tol : float, default=1e-6
        Stop when the largest change of a code in a step is below
        ``tol * max(|codes|)``.
    solver : {"fista", "cd"}, default="fista"

    Returns
    -------
    ndarray of shape (n_samples, n_atoms)

    Examples
    --------
    >>> import numpy as np
    >>> from nilearn_vlm.decomposition import sparse_codes
    >>> sparse_codes(np.array([[2.0, 0.5, -3.0]]), np.eye(3), alpha=1.0).round(6).tolist()
    [[1.0, 0.0, -2.0]]
    """
    samples = np.asarray(samples)
    if samples.dtype not in (np.float32, np.float64):
        samples = samples.astype(np.float64)
    D = np.asarray(atoms, dtype=np.float64)
    Z0 = None if init is None else np.asarray(init, dtype=np.float64).T
    Z, _ = lasso_codes(_correlations(samples, D), D @ D.T, alpha, Z0, max_iter=max_iter, tol=tol, solver=solver)
    return Z.T
