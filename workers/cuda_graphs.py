"""CUDA graphs for the small fixed-shape networks, one graph per bucketed batch size.

The R-net (24x24 crops), the O-net (48x48) and the expression network (64x64) are tiny: on a GPU
their cost is mostly kernel launches, which is what a captured CUDA graph replaces with one launch.
A graph needs fixed shapes, so a batch of ``n`` inputs is padded with zeros to the bucket
:func:`workers.staging.bucket_size` gives (the next power of two), the bucket's graph is replayed on
its static input, and the first ``n`` output rows are returned (copies: the next replay overwrites
the static outputs). The rows of these networks never interact (inference, batch norms folded or
fixed), so padding changes no real row: tested on the CPU with :func:`pad_to_bucket`, and on CUDA
against the eager call in a ``gpu``-marked test.

Off by default (``INTER1SRV_CUDA_GRAPHS=1`` turns it on): whether it pays has not been measured on a
GPU yet (``python -m perf.bench_model --device cuda --cuda-graphs 4,16`` measures it side by side). A
batch larger than ``max_batch`` (32: larger batches are not launch-bound), any CPU call, and a
capture that fails (logged once; the module then runs eagerly) take the eager path. Every bucket is
captured at worker start (:meth:`BucketedGraphs.warm`), so serving never pauses for a capture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .staging import bucket_size

GRAPHS_ENV = "INTER1SRV_CUDA_GRAPHS"
MAX_BATCH = 32  # larger batches are not launch-bound: they run eagerly
log = logging.getLogger("inter1srv.worker")


def graphs_enabled(flag: bool | None = None) -> bool:
    """``flag`` if given, else ``$INTER1SRV_CUDA_GRAPHS`` (1/true/yes/on)."""
    if flag is not None:
        return flag
    return os.environ.get(GRAPHS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


Outputs = torch.Tensor | tuple[torch.Tensor, ...]


def _first_rows(out: Outputs, n: int) -> Outputs:
    """Copies of the first ``n`` rows (the next replay overwrites the static outputs)."""
    if isinstance(out, tuple):
        return tuple(o[:n].clone() for o in out)
    return out[:n].clone()


def pad_to_bucket(x: torch.Tensor, max_batch: int = MAX_BATCH) -> torch.Tensor:
    """``x`` with zero rows appended up to its bucket size (``x`` itself when it fills the bucket)."""
    b = bucket_size(x.shape[0], max_batch)
    if b == x.shape[0]:
        return x
    pad = torch.zeros((b - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
    return torch.cat([x, pad]).contiguous(memory_format=_memory_format(x))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    static_in: torch.Tensor
    static_out: Outputs


class BucketedGraphs:
    """``module(x)`` through one captured CUDA graph per (bucket, input shape, dtype, layout)."""

    def __init__(self, module: Callable[[torch.Tensor], Outputs], *, enabled: bool | None = None,
                 max_batch: int = MAX_BATCH, name: str = "") -> None:
        self.module, self.max_batch, self.name = module, max_batch, name
        self.enabled = graphs_enabled(enabled)
        self._graphs: dict[tuple, _Graph] = {}
        self._pool = None  # one memory pool shared by every graph of this module
        self.captures = self.replays = 0

    def __call__(self, x: torch.Tensor) -> Outputs:
        n = x.shape[0]
        if not self.enabled or x.device.type != "cuda" or n == 0 or n > self.max_batch:
            return self.module(x)
        with torch.inference_mode():  # graphs are for inference; their tensors are inference tensors
            fmt = _memory_format(x)
            key = (bucket_size(n, self.max_batch), tuple(x.shape[1:]), x.dtype, fmt, x.device)
            g = self._graphs.get(key)
            if g is None:
                g = self._capture(key, fmt)
                if g is None:
                    return self.module(x)
            g.static_in[:n].copy_(x)
            if n < key[0]:
                g.static_in[n:].zero_()
            g.graph.replay()
            self.replays += 1
            return _first_rows(g.static_out, n)

    def warm(self, shape: tuple[int, ...], device: torch.device) -> None:
        """Capture every bucket for inputs shaped ``shape`` now (worker start-up), not in the batches
        that first need them (a capture synchronises the device). Nothing on the CPU or when off."""
        if not self.enabled or torch.device(device).type != "cuda":
            return
        b = 1
        while b <= self.max_batch and self.enabled:
            self(torch.zeros((b, *shape), device=device))
            b *= 2

    def _capture(self, key: tuple, fmt: torch.memory_format) -> _Graph | None:
        bucket, shape, dtype, _, device = key
        prev = torch.cuda.current_stream(device)
        try:
            static_in = torch.zeros((bucket, *shape), dtype=dtype, device=device).contiguous(memory_format=fmt)
            side = torch.cuda.Stream(device=device)  # warm-up off the default stream, as capture requires
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.module(static_in)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                static_out = self.module(static_in)
            self._pool = graph.pool()
        except Exception as exc:  # noqa: BLE001 - any capture failure: run eagerly from now on, say so once
            torch.cuda.set_stream(prev)  # a capture that fails on exit leaves its capture stream current
            torch.cuda.synchronize(device)
            self.enabled, self._graphs, self._pool = False, {}, None  # and frees what was captured
            log.warning("CUDA graph capture of %s failed, running it eagerly: %s", self.name or self.module, exc)
            return None
        g = _Graph(graph, static_in, static_out)
        self._graphs[key] = g
        self.captures += 1
        return g
