"""Array backends of the GEMM- and FFT-bound steps: NumPy (default) or torch.

The exact ridge of :class:`~nilearn_vlm.VoxelEncoder`, the circular-shift
permutation nulls of :func:`~nilearn_vlm.stats.permutation_null` and the
dictionary products of :class:`~nilearn_vlm.SparseAtoms` take ``backend``
(``"numpy"`` or ``"torch"``) and ``device`` (``"cpu"``, ``"cuda"``,
``"cuda:N"``). A CUDA device implies torch. torch is imported only when the
torch backend is asked for, so ``import nilearn_vlm`` never imports it.

Data enter the device in chunks (through pinned host memory on CUDA) and
only results come back. Both backends run the same operations in the same
working precision, so they agree up to the rounding of their kernels.
"""

import importlib
import re

import numpy as np
import scipy.fft as sfft
from scipy import linalg

__all__ = ["BACKENDS", "check_backend", "get_backend"]

BACKENDS = ("numpy", "torch")
_DEVICE = re.compile(r"^(cpu|cuda)(:\d+)?$")


def check_backend(backend="numpy", device="cpu"):
    """Validate ``backend`` and ``device``; return the backend they mean.

    A CUDA device implies torch, whatever ``backend`` says. Unknown names
    raise a ``ValueError`` that lists the valid ones. Nothing is imported.

    Parameters
    ----------
    backend : {"numpy", "torch"}
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    (backend, device) : tuple of str

    Examples
    --------
    >>> check_backend("numpy", "cuda:1")
    ('torch', 'cuda:1')
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    if not isinstance(device, str) or not _DEVICE.match(device) or device.startswith("cpu:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (N a GPU index); got {device!r}.")
    if device.startswith("cuda"):
        backend = "torch"
    return backend, device


def get_backend(backend="numpy", device="cpu"):
    """The array backend for ``backend`` on ``device``.

    Parameters
    ----------
    backend : {"numpy", "torch"} or backend object
        A backend object (from an earlier call) is returned as it is.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (implies torch).

    Returns
    -------
    NumpyBackend or TorchBackend

    Raises
    ------
    ImportError
        torch asked for but not installed.
    RuntimeError
        A CUDA device asked for where torch finds none (the message names
        the fix).

    Examples
    --------
    >>> get_backend().name
    'numpy'
    """
    if isinstance(backend, (NumpyBackend, TorchBackend)):
        return backend
    backend, device = check_backend(backend, device)
    if backend == "numpy":
        return NUMPY
    return TorchBackend(device)


class NumpyBackend:
    """NumPy and SciPy on the CPU: the reference backend."""

    name = "numpy"
    device = "cpu"
    xp = np

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        return np.asarray(a)

    def zeros(self, n, dtype):
        return np.zeros(n, dtype=dtype)

    def empty_like(self, a):
        return np.empty_like(a)

    def stack(self, arrays):
        return np.stack(arrays)

    def matmul(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    def eigh(self, G):
        """Eigenvalues (clipped at 0) and vectors of a symmetric matrix (``syevd``), overwriting it."""
        s, V = linalg.eigh(G, driver="evd", overwrite_a=True, check_finite=False)
        np.maximum(s, 0, out=s)
        return s, V

    def svd(self, X):
        return linalg.svd(X, full_matrices=False, lapack_driver="gesdd", check_finite=False)

    def clip0(self, a):
        return np.maximum(a, 0)

    def astype(self, a, dtype):
        return a.astype(dtype)

    def copy(self, a, dtype):
        return np.array(a, dtype=dtype)

    def flatnonzero(self, mask):
        return np.flatnonzero(mask)

    def absmax0(self, a):
        """Column maxima of ``|a|`` (0 for an empty column)."""
        return np.abs(a).max(0, initial=0.0)

    def soft_threshold(self, a, t):
        return np.maximum(a - t, 0.0) + np.minimum(a + t, 0.0)

    def nan_to_num(self, a, dtype):
        """``a`` in ``dtype`` with NaN as 0 (and infinities as the largest finite values)."""
        return np.nan_to_num(a.astype(dtype, copy=False), nan=0.0)

    def sum64(self, a):
        """Column sums accumulated in float64."""
        return a.sum(0, dtype=np.float64)

    def sqsum64(self, a):
        """Column sums of squares accumulated in float64."""
        return np.einsum("ij,ij->j", a, a, dtype=np.float64)

    def contiguous(self, a):
        return np.ascontiguousarray(a)

    def broadcast(self, a, shape):
        """``a`` broadcast to ``shape``, as a contiguous array."""
        return np.ascontiguousarray(np.broadcast_to(a, shape))

    def rfft(self, a):
        return sfft.rfft(a, axis=0)

    def irfft(self, a, n):
        return sfft.irfft(a, n=n, axis=0)

    def synchronize(self):
        """Wait for queued device work (nothing to wait for on NumPy)."""


NUMPY = NumpyBackend()


def _import_torch():
    try:
        return importlib.import_module("torch")
    except ImportError as err:
        raise ImportError(
            "backend='torch' (or a CUDA device) needs PyTorch, which is not installed: "
            "`pip install torch`, or use backend='numpy', device='cpu'."
        ) from err


class TorchBackend:
    """torch on a CPU or CUDA device, with the operations of :class:`NumpyBackend`."""

    name = "torch"

    def __init__(self, device="cpu"):
        torch = _import_torch()
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
                raise RuntimeError(
                    f"device={device!r} needs a CUDA GPU, but torch finds none "
                    f"(torch.cuda.is_available() is False; torch {torch.__version__}, {build}). "
                    "Use device='cpu' (backend='numpy', or backend='torch' on the CPU), or run on a "
                    "machine with an NVIDIA GPU and a CUDA build of torch."
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            count = torch.cuda.device_count()
            if index >= count:
                raise RuntimeError(
                    f"device={device!r} names GPU {index}, but torch sees {count} GPU(s) "
                    f"(cuda:0 to cuda:{count - 1}): pick one of them, or check CUDA_VISIBLE_DEVICES."
                )
        self.torch = self.xp = torch
        self.device = device
        self.cuda = device.startswith("cuda")

    def _dtype(self, dtype):
        return getattr(self.torch, np.dtype(dtype).name)

    def asarray(self, a, dtype=None):
        """A NumPy array (or tensor) on the device, through pinned memory on CUDA."""
        torch = self.torch
        if isinstance(a, torch.Tensor):
            return a.to(self.device, None if dtype is None else self._dtype(dtype))
        a = np.ascontiguousarray(a, dtype=dtype)
        t = torch.from_numpy(a)
        if self.cuda:
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def to_numpy(self, a):
        if isinstance(a, self.torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def zeros(self, n, dtype):
        return self.torch.zeros(n, dtype=self._dtype(dtype), device=self.device)

    def empty_like(self, a):
        return self.torch.empty_like(a)

    def stack(self, arrays):
        return self.torch.stack(list(arrays))

    def matmul(self, a, b, out=None):
        return self.torch.matmul(a, b, out=out)

    def eigh(self, G):
        s, V = self.torch.linalg.eigh(G)
        return s.clamp_(min=0), V

    def svd(self, X):
        return self.torch.linalg.svd(X, full_matrices=False)

    def clip0(self, a):
        return a.clamp(min=0)

    def astype(self, a, dtype):
        return a.to(self._dtype(dtype))

    def copy(self, a, dtype):
        return self.asarray(a, dtype).clone()

    def flatnonzero(self, mask):
        return self.torch.nonzero(mask.reshape(-1)).reshape(-1)

    def absmax0(self, a):
        if a.shape[0] == 0:
            return self.torch.zeros(a.shape[1], dtype=a.dtype, device=a.device)
        return a.abs().amax(0)

    def soft_threshold(self, a, t):
        return a.sub(t).clamp_(min=0) + a.add(t).clamp_(max=0)

    def nan_to_num(self, a, dtype):
        return self.torch.nan_to_num(a.to(self._dtype(dtype)), nan=0.0)

    def sum64(self, a):
        return a.sum(0, dtype=self.torch.float64)

    def sqsum64(self, a):
        return a.square().sum(0, dtype=self.torch.float64)

    def contiguous(self, a):
        return a.contiguous()

    def broadcast(self, a, shape):
        return a.expand(shape).contiguous()

    def rfft(self, a):
        return self.torch.fft.rfft(a, dim=0)

    def irfft(self, a, n):
        return self.torch.fft.irfft(a, n=n, dim=0)

    def synchronize(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.device)
