"""``Program``: the runtime IR with one kernel per node — run it, plan its memory, profile it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.runtime import costs, intgemm, ops, planner, quant
from edgeflow.runtime.errors import RuntimeModelError
from edgeflow.runtime.ir import Graph, GraphInput, TensorSpec
from edgeflow.runtime.shapes import infer as infer_shapes


class Program:
    """An int8 program: the IR ``graph`` (see ``edgeflow.runtime.ir``) and one kernel per node.

    ``run(inputs)`` takes what ``onnxruntime.InferenceSession.run(None, feeds)`` takes — one array
    or a dict name → array with the graph's own dtypes — and returns the list of graph outputs.
    Float inputs must be finite: NaN or inf raise ``RuntimeModelError``.
    ``path`` is the source model file (onnxruntime, the profiler's reference, reads it); ``save``
    writes the IR itself (``edgeflow.runtime.load`` reads it back).
    """

    def __init__(self, graph: Graph, rounding: str = "onnx", path: str | Path | None = None) -> None:
        if rounding not in quant.MODES:
            raise RuntimeModelError(f"rounding must be one of {', '.join(quant.MODES)}, got {rounding!r}")
        self.ir = graph
        self.ops = [ops.build(node) for node in graph.nodes]
        self.rounding = rounding
        self.path = None if path is None else Path(path)
        self._shapes: dict[tuple, dict[str, tuple[int, ...]]] = {}
        self._last_use = self._compute_last_use()

    @property
    def inputs(self) -> list[GraphInput]:
        return self.ir.inputs

    @property
    def output_names(self) -> list[str]:
        return self.ir.outputs

    @property
    def tensors(self) -> dict[str, TensorSpec]:
        return self.ir.tensors

    def save(self, path: str | Path) -> Path:
        """Write the IR to ``path`` (``.json``) and the ``.npz`` of its arrays beside it."""
        return self.ir.save(path)

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
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
                raise RuntimeModelError(f"input {gi.name!r}: {bad} non-finite value(s) (NaN or inf); the runtime "
                                        "quantizes finite inputs only")
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
        # one torch thread for the whole run (the kernels' small tensors; see intgemm.single_threaded_torch)
        with intgemm.single_threaded_torch if "torch" in sys.modules else contextlib.nullcontext():
            self._run_ops(env, mode, keep, overrides)
        outputs = [env[n] for n in self.output_names]
        return (outputs, env) if keep else outputs

    def _run_ops(self, env: dict[str, np.ndarray], mode: str, keep: bool,
                 overrides: dict[str, np.ndarray] | None) -> None:
        """Run every op in order on ``env`` (name → array), in place."""
        for step, op in enumerate(self.ops):
            try:
                vals = [env[n] for n in op.inputs]
            except KeyError as exc:
                raise RuntimeModelError(f"node {op.name!r}: input {exc.args[0]!r} was never computed") from None
            try:
                outs = op.run(vals, mode)
            except RuntimeModelError:
                raise
            except (ValueError, IndexError) as exc:
                raise RuntimeModelError(f"node {op.name!r} ({op.kind}): {exc}") from None
            except (Exception, MemoryError, RecursionError) as exc:  # never a raw exception out of run
                msg = (str(exc).strip().splitlines() or [""])[0][:200]
                raise RuntimeModelError(f"node {op.name!r} ({op.kind}): {type(exc).__name__}: {msg}") from None
            for n, v in zip(op.outputs, outs):
                env[n] = overrides[n] if overrides and n in overrides else v
            if not keep:
                for n in op.inputs:
                    if self._last_use.get(n, -1) <= step and n not in self.output_names:
                        env.pop(n, None)

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
        """Shape of every tensor: the IR's static shapes (one sample, batch 1), or with
        ``input_shapes`` the shapes inferred for those inputs (``edgeflow.runtime.shapes``)."""
        if input_shapes is None and all(t.shape is not None for t in self.tensors.values()):
            return {n: t.shape for n, t in self.tensors.items()}
        ins = self.input_shapes(input_shapes)
        key = tuple(sorted(ins.items()))
        if key not in self._shapes:
            try:
                self._shapes[key] = infer_shapes(self.ir, ins)
            except ValueError as exc:
                raise RuntimeModelError(f"input shapes {dict(ins)}: {exc}") from None
        return self._shapes[key]

    def arena_tensors(self, input_shapes=None) -> dict[str, int]:
        """Integer tensors held in the arena → bytes (float boundary tensors are not)."""
        shp = self.shapes(input_shapes)
        return {n: int(np.prod(s)) * self.tensors[n].dtype.itemsize for n, s in shp.items()
                if self.tensors[n].dtype.kind in "iu"}

    def plan_memory(self, input_shapes=None) -> planner.MemoryPlan:
        """Greedy arena plan (16-byte aligned) of the integer activations for one sample."""
        sizes = self.arena_tensors(input_shapes)
        q_inputs = [o for node in self.ir.nodes if node.kind == "quantize" for o in node.outputs]
        bufs = planner.lifetimes(self.ir.nodes, sizes, [gi.name for gi in self.inputs] + q_inputs, self.output_names)
        return planner.greedy_plan(bufs)

    @property
    def flash_bytes(self) -> int:
        """Weights at their bit-width + biases + requantization parameters (``edgeflow.runtime.costs``)."""
        return sum(costs.flash_bytes(node) for node in self.ir.nodes)

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
