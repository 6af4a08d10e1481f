"""Array backends: where the batched engine's arrays live (``--device cpu|cuda``).

A :class:`Backend` bundles an array module ``xp`` (NumPy or CuPy), its sparse module
(``scipy.sparse`` or ``cupyx.scipy.sparse``), host/device transfers and a memory budget.
Three backends exist:

``cpu``   NumPy/SciPy.  ``--device cpu`` (the default) does not use the device engine at
          all: it runs the reference engine (:mod:`mast_cli.algorithms`) unchanged.
``cuda``  CuPy on the current GPU (optional extra ``pip install '.[gpu]'``).
``fake``  NumPy/SciPy posing as a device, with its own (tiny, if asked) memory budget:
          it runs the device code paths (Philox streams keyed per trajectory, memory
          planning, chunking over trajectories) on the CPU, so that they are tested
          without a GPU.
``sim``   as ``fake``, but taking every branch that CUDA takes (``is_gpu``: reductions
          with ``xp.sum``/``xp.mean``, a separate CSR copy of Aᵀ, penalties evaluated by
          the device objective, explicit host copies): the GPU-only code, run on NumPy.

Exact solvers (Newton, Cholesky, eigenvalues) always run on the CPU; only the batched
pieces (margins, gradients, losses, sketch draws, masked accuracy, pool objective) go
through a backend.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..io.errors import MastError

__all__ = ["DEVICES", "Backend", "get_backend", "cuda_status", "check_device", "plan_chunks",
           "fake_backend", "sim_backend"]

#: Values of ``--device``.
DEVICES = ("cpu", "cuda")

#: Share of the free device memory a launch may plan to use (the rest is headroom for
#: the library's workspaces and allocator fragmentation).
MEMORY_SHARE = 0.7


class Backend:
    """An array backend: ``xp`` (array module), ``sparse`` (sparse module) and transfers.

    Parameters
    ----------
    name : {'cpu', 'cuda', 'fake'}
    xp : module
        ``numpy`` or ``cupy``.
    sparse : module
        ``scipy.sparse`` or ``cupyx.scipy.sparse``.
    memory_bytes : int or None
        Memory budget for one launch in bytes (``None``: ask the device when planning;
        the CPU backends without a budget never split).
    """

    def __init__(self, name, xp, sparse, memory_bytes=None):
        self.name, self.xp, self.sparse = name, xp, sparse
        self._memory = memory_bytes

    @property
    def is_gpu(self):
        """True when the GPU code paths are taken (``cuda``, and ``sim`` which runs them on NumPy)."""
        return self.name in ("cuda", "sim")

    def asarray(self, a, dtype=None):
        """A host array (or scalar) as an array of this backend."""
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a):
        """An array of this backend as a NumPy array (a view when already on the host)."""
        if self.name == "cuda":
            return a.get()
        return np.asarray(a)

    def csr(self, A, dtype=np.float64):
        """A SciPy sparse matrix as a CSR matrix of this backend (data in ``dtype``)."""
        A = sp.csr_matrix(A, dtype=dtype)
        if self.is_gpu:
            return self.sparse.csr_matrix(A)
        return A

    def free_memory(self):
        """Bytes a launch may plan to use: the budget, or a share of the free GPU memory.

        Returns ``None`` for a CPU backend without a budget (no planning: one chunk).
        """
        if self._memory is not None:
            return int(self._memory)
        if self.name != "cuda":
            return None
        free, _ = self.xp.cuda.runtime.memGetInfo()
        pool = self.xp.get_default_memory_pool()
        return int(MEMORY_SHARE * (free + pool.free_bytes()))

    def synchronize(self):
        """Wait for the device's queued work (for timing); a no-op on the CPU."""
        if self.name == "cuda":
            self.xp.cuda.runtime.deviceSynchronize()

    def __repr__(self):
        return f"Backend({self.name!r})"


_CPU = Backend("cpu", np, sp)
_CACHE = {}


def fake_backend(memory_bytes=None):
    """A NumPy backend that takes the device code paths (tests, ``make gpu-check`` dry runs).

    Parameters
    ----------
    memory_bytes : int, optional
        Memory budget of one launch: a small value forces the trajectories into chunks.
    """
    return Backend("fake", np, sp, memory_bytes)


def sim_backend(memory_bytes=None):
    """A NumPy backend that takes the branches CUDA takes (``is_gpu`` True): tests of the
    GPU-only code without a GPU (see the module docstring)."""
    return Backend("sim", np, sp, memory_bytes)


def cuda_status():
    """Why CUDA cannot be used here, or ``None`` when it can.

    Returns
    -------
    str or None
        A short reason ('CuPy is not installed ...', 'no CUDA GPU is visible ...').
    """
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install '.[gpu]', or a cupy-cudaXXx wheel matching the driver)"
    except Exception as exc:  # a broken install: import fails for other reasons
        return f"CuPy cannot be imported ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return f"no CUDA GPU is visible to CuPy ({' '.join(str(exc).split())[:120]})"
    if count < 1:
        return "no CUDA GPU is visible to CuPy"
    return None


def check_device(device):
    """Validate a ``--device`` value; for ``cuda``, that CuPy and a GPU are there.

    Raises
    ------
    MastError
        Unknown device, or ``cuda`` without CuPy or without a GPU (one line, exit 2).
    """
    if device not in DEVICES:
        raise MastError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
    if device == "cuda":
        why = cuda_status()
        if why is not None:
            raise MastError(f"--device cuda is not available: {why}; use --device cpu")


def get_backend(device="cpu"):
    """The backend of a ``--device`` value (``cpu``, ``cuda``) or a :class:`Backend` itself.

    Raises
    ------
    MastError
        See :func:`check_device`.
    """
    if isinstance(device, Backend):
        return device
    check_device(device)
    if device == "cpu":
        return _CPU
    if "cuda" not in _CACHE:
        import cupy
        import cupyx.scipy.sparse as csp

        _CACHE["cuda"] = Backend("cuda", cupy, csp)
    return _CACHE["cuda"]


def plan_chunks(R, per_traj_bytes, fixed_bytes, budget):
    """Split R trajectories into consecutive chunks whose arrays fit the memory budget.

    Parameters
    ----------
    R : int
        Number of trajectories (columns).
    per_traj_bytes : int
        Device bytes one trajectory needs at the peak of a step (all its (n,) and (d,)
        columns, temporaries included).
    fixed_bytes : int
        Device bytes independent of R (the data matrix, its transpose, labels).
    budget : int or None
        Bytes available; ``None`` means no limit (one chunk).

    Returns
    -------
    list of (start, stop)
        Consecutive column ranges covering 0..R.

    Raises
    ------
    MastError
        When not even one trajectory fits (the message gives both sizes in MiB).
    """
    if R <= 0:
        return []
    if budget is None:
        return [(0, R)]
    room = budget - fixed_bytes
    per = int(room // max(1, per_traj_bytes)) if room > 0 else 0
    if per < 1:
        raise MastError(f"device memory too small: one trajectory needs {(fixed_bytes + per_traj_bytes) / 2**20:.1f} "
                        f"MiB, {budget / 2**20:.1f} MiB are available")
    per = min(per, R)
    k = -(-R // per)                      # chunks, then even sizes
    size = -(-R // k)
    return [(a, min(R, a + size)) for a in range(0, R, size)]
