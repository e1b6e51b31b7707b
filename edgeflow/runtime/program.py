"""``Program``: a lowered integer program — run it, plan its memory, profile it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.runtime import planner, quant
from edgeflow.runtime.errors import RuntimeModelError
from edgeflow.runtime.loader import GraphInput, QInfo


class Program:
    """An int8 program lowered from an ONNX file (see ``edgeflow.runtime.load``).

    ``run(inputs)`` takes what ``onnxruntime.InferenceSession.run(None, feeds)`` takes — one array
    or a dict name → array with the graph's own dtypes — and returns the list of graph outputs.
    """

    def __init__(self, ops, inputs: list[GraphInput], outputs: list[str], tensors: dict[str, QInfo],
                 rounding: str = "onnx", path: str | Path | None = None, weight_bits: dict[str, int] | None = None) -> None:
        if rounding not in quant.MODES:
            raise RuntimeModelError(f"rounding must be one of {', '.join(quant.MODES)}, got {rounding!r}")
        self.ops = ops
        self.inputs = inputs
        self.output_names = outputs
        self.tensors = tensors
        self.rounding = rounding
        self.path = None if path is None else Path(path)
        self.weight_bits = weight_bits or {}
        self._shapes: dict[tuple, dict[str, tuple[int, ...]]] = {}
        self._last_use = self._compute_last_use()

    # ------------------------------------------------------------------ running
    def _compute_last_use(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            for n in op.inputs:
                last[n] = i
        for n in self.output_names:
            last[n] = len(self.ops)
        return last

    def _feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        elif isinstance(inputs, (list, tuple)) and len(inputs) == len(self.inputs) and all(isinstance(a, np.ndarray) for a in inputs):
            feeds = {gi.name: a for gi, a in zip(self.inputs, inputs)}
        else:
            if len(self.inputs) != 1:
                raise RuntimeModelError(f"the model has {len(self.inputs)} inputs "
                                        f"({', '.join(i.name for i in self.inputs)}): pass a dict name -> array")
            feeds = {self.inputs[0].name: inputs}
        names = {gi.name for gi in self.inputs}
        extra = set(feeds) - names
        if extra:
            raise RuntimeModelError(f"unknown input name(s) {sorted(extra)}; the model's inputs: {sorted(names)}")
        for gi in self.inputs:
            if gi.name not in feeds:
                raise RuntimeModelError(f"missing input {gi.name!r}")
            a = feeds[gi.name]
            if not isinstance(a, np.ndarray):
                raise RuntimeModelError(f"input {gi.name!r}: expected a numpy array of {gi.dtype}, got {type(a).__name__}")
            if a.dtype != gi.dtype:
                raise RuntimeModelError(f"input {gi.name!r}: expected dtype {gi.dtype}, got {a.dtype}")
            if a.ndim != len(gi.shape) or any(d is not None and d != s for d, s in zip(gi.shape, a.shape)):
                want = "[" + ", ".join("?" if d is None else str(d) for d in gi.shape) + "]"
                raise RuntimeModelError(f"input {gi.name!r}: expected shape {want}, got {list(a.shape)}")
            if a.size == 0:
                raise RuntimeModelError(f"input {gi.name!r}: empty array {list(a.shape)}")
        return feeds

    def run(self, inputs: Any, rounding: str | None = None, keep: bool = False,
            overrides: dict[str, np.ndarray] | None = None) -> list[np.ndarray] | tuple[list[np.ndarray], dict]:
        """Run the program. ``keep=True`` also returns every tensor (name → array).

        ``overrides`` replaces tensors as soon as they are produced (layer-by-layer comparisons).
        """
        mode = rounding or self.rounding
        if mode not in quant.MODES:
            raise RuntimeModelError(f"rounding must be one of {', '.join(quant.MODES)}, got {mode!r}")
        env = self._feeds(inputs)
        for step, op in enumerate(self.ops):
            try:
                vals = [env[n] for n in op.inputs]
            except KeyError as exc:
                raise RuntimeModelError(f"node {op.name!r}: input {exc.args[0]!r} was never computed") from None
            try:
                outs = op.run(vals, mode)
            except (ValueError, IndexError) as exc:
                raise RuntimeModelError(f"node {op.name!r} ({op.kind}): {exc}") from None
            for n, v in zip(op.outputs, outs):
                env[n] = overrides[n] if overrides and n in overrides else v
            if not keep:
                for n in op.inputs:
                    if self._last_use.get(n, -1) <= step and n not in self.output_names:
                        env.pop(n, None)
        outputs = [env[n] for n in self.output_names]
        return (outputs, env) if keep else outputs

    __call__ = run

    # ------------------------------------------------------------------ shapes and memory
    def input_shapes(self, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple[int, ...]]:
        out = {}
        for gi in self.inputs:
            if shapes and gi.name in shapes:
                out[gi.name] = tuple(int(d) for d in shapes[gi.name])
                continue
            dims = list(gi.shape)
            if dims and dims[0] is None:
                dims[0] = 1
            if any(d is None for d in dims):
                raise RuntimeModelError(f"input {gi.name!r} has symbolic dimensions {gi.shape}: give its shape")
            out[gi.name] = tuple(dims)
        return out

    def shapes(self, input_shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor for one sample (batch 1), from a dry run on zeros."""
        ins = self.input_shapes(input_shapes)
        key = tuple(sorted(ins.items()))
        if key not in self._shapes:
            feeds = {gi.name: np.zeros(ins[gi.name], dtype=gi.dtype) for gi in self.inputs}
            _, env = self.run(feeds, keep=True)
            self._shapes[key] = {n: tuple(v.shape) for n, v in env.items()}
            self._dtypes = {n: v.dtype for n, v in env.items()}
        return self._shapes[key]

    def arena_tensors(self, input_shapes=None) -> dict[str, int]:
        """Integer tensors held in the arena → bytes (float boundary tensors are not)."""
        shp = self.shapes(input_shapes)
        return {n: int(np.prod(s)) * self._dtypes[n].itemsize for n, s in shp.items() if self._dtypes[n].kind in "iu"}

    def plan_memory(self, input_shapes=None) -> planner.MemoryPlan:
        """Greedy arena plan (16-byte aligned) of the integer activations for one sample."""
        sizes = self.arena_tensors(input_shapes)
        q_inputs = [o for op in self.ops if op.kind == "quantize" for o in op.outputs]
        bufs = planner.lifetimes(self.ops, sizes, [gi.name for gi in self.inputs] + q_inputs, self.output_names)
        return planner.greedy_plan(bufs)

    @property
    def flash_bytes(self) -> int:
        return sum(op.flash_bytes() for op in self.ops)

    # ------------------------------------------------------------------ profiling
    def profile(self, hardware: Any = None, dataset: Any = None, *, reference: Any = None, input_shapes=None,
                max_samples: int | None = None, batch_size: int = 256, rounding: str | None = None):
        """Per-layer and total costs; optional accuracy and agreement with onnxruntime.

        ``hardware``: a ``HardwareModel`` or target name (``edgeflow.hardware.load``); ``dataset``:
        an iterable of (x, y) batches (numpy or torch), or a (x, y) pair of arrays; ``reference``:
        "onnxruntime" (default when a dataset is given and the file exists), None to skip, or a callable
        x -> outputs. See ``edgeflow.runtime.profiler.profile``.
        """
        from edgeflow.runtime.profiler import profile

        return profile(self, hardware=hardware, dataset=dataset, reference=reference, input_shapes=input_shapes,
                       max_samples=max_samples, batch_size=batch_size, rounding=rounding)

    def summary(self) -> str:
        return "\n".join(f"{i:3d} {op.kind:16s} {op.name}" for i, op in enumerate(self.ops))

    def __repr__(self) -> str:
        return f"Program({self.path.name if self.path else '?'}, {len(self.ops)} ops, rounding={self.rounding!r})"
