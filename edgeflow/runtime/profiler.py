"""Per-layer and total costs of a Program; accuracy and agreement with onnxruntime.

Per layer (one integer op): MACs and other ops (``edgeflow.runtime.costs``: the counting convention
of ``edgeflow.hardware.analyze``), weights (count, bits, sparsity), flash bytes (weights at their
true bit-width in the best storage format the target supports, + int32 biases + requantization
parameters), activation bytes (inputs + outputs), and — with a hardware model — latency, energy,
the roofline's cycle terms and ``bound`` from ``HardwareModel.estimate_layer`` (the same call the
analysis makes: ``macs``, ``ops``, weight + constant bytes, activation bytes, and a sparse kernel
only where the weights are stored in a sparse format). Totals add peak RAM from the greedy arena
plan and ``fits`` (flash and arena within the target's capacities). For a program imported from a
``.tflite`` file the total flash is the file's size (TFLite Micro keeps the flatbuffer in flash as
it is) and agreement is measured against LiteRT's reference kernels (``ai-edge-litert``).

Size at rest (what a file or an over-the-air update carries): per layer the weights in the smallest
of every storage format, Huffman included (``edgeflow.hardware.storage.at_rest_format``: codebook
indices, Han's relative index, canonical Huffman with its tables) + biases; ``bytes_at_rest`` sums
it and ``size_ratio`` = float32 dense bytes (4 · (weights + biases)) / ``bytes_at_rest``, the
figures the cluster stage reports for the same model. A target that lists ``huffman`` among its
``sparse_formats`` executes Huffman-coded weights and pays ``huffman_decode_cycles`` per non-zero
weight decoded at run time.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.core.accuracy import percent_correct
from edgeflow.hardware.schema import ZERO_SKIPPING_FORMATS
from edgeflow.runtime import costs, quant
from edgeflow.runtime.errors import RuntimeModelError


@dataclass
class LayerProfile:
    index: int
    name: str
    kind: str
    output_shape: tuple[int, ...]
    macs: int
    ops: int
    weights: int
    weight_bits: int
    sparsity: float
    flash_bytes: int
    activation_bytes: int
    storage_format: str = "dense"
    biases: int = 0              # bias values (stored as int32)
    rest_format: str = "dense"   # smallest of every format (at rest)
    rest_bytes: int = 0          # weights in ``rest_format`` + biases
    codebook_bits: int = 0       # index bits of a clustered layer's codebook (export metadata); 0 = none
    latency_ms: float = 0.0
    energy_uj: float = 0.0
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    overhead_cycles: float = 0.0
    bound: str = ""  # compute | memory | overhead (``edgeflow.hardware.roofline``); "" without a target or for views


@dataclass
class Profile:
    layers: list[LayerProfile]
    macs: int
    ops: int
    flash_bytes: int
    peak_ram_bytes: int
    latency_ms: float | None
    energy_uj: float | None
    fits: bool | None
    hardware: str | None
    rounding: str
    plan: Any = None
    accuracy: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)

    @property
    def bytes_at_rest(self) -> int:
        """Σ (weights in the smallest format, Huffman included, + biases) over the layers."""
        return sum(lp.rest_bytes for lp in self.layers)

    @property
    def float32_bytes(self) -> int:
        """The same parameters as float32 dense: 4 · (weights + biases)."""
        return sum(4 * (lp.weights + lp.biases) for lp in self.layers if lp.weights)

    def metrics(self) -> dict[str, float]:
        """Flat metric dict with edgeflow's bare names (the profile stage prefixes ``profile/``)."""
        m: dict[str, float] = {"macs": float(self.macs), "ops": float(self.ops), "flash_bytes": float(self.flash_bytes),
                               "peak_ram_bytes": float(self.peak_ram_bytes), "bytes_at_rest": float(self.bytes_at_rest)}
        if self.bytes_at_rest:
            m["size_ratio"] = self.float32_bytes / self.bytes_at_rest
        if self.latency_ms is not None:
            m["latency_ms"] = float(self.latency_ms)
            m["energy_uj"] = float(self.energy_uj)
        if self.fits is not None:
            m["fits"] = float(self.fits)
        m.update({k: float(v) for k, v in self.accuracy.items()})
        m.update({k: float(v) for k, v in self.agreement.items()})
        return m

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(lp) for lp in self.layers]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["index"])
            w.writeheader()
            for r in rows:
                r["output_shape"] = "x".join(str(d) for d in r["output_shape"])
                w.writerow(r)
        return path

    def table(self, title: str = "") -> Any:
        """A rich Table of the layers with a totals row."""
        from rich.table import Table

        t = Table(title=title or None, show_footer=True)
        hw = self.latency_ms is not None
        cols = [("#", "", "right"), ("layer", "total", "left"), ("op", "", "left"), ("output", "", "left"),
                ("MACs", f"{self.macs:,}", "right"), ("ops", f"{self.ops:,}", "right"), ("w bits", "", "right"),
                ("format", "", "left"), ("flash B", f"{self.flash_bytes:,}", "right"),
                ("at rest", "", "left"), ("rest B", f"{self.bytes_at_rest:,}", "right"), ("act B", "", "right")]
        if hw:
            cols += [("latency ms", f"{self.latency_ms:.4f}", "right"), ("energy uJ", f"{self.energy_uj:.3f}", "right")]
        for name, foot, just in cols:
            t.add_column(name, footer=foot, justify=just)
        for lp in self.layers:
            row = [str(lp.index), lp.name[-40:], lp.kind, "x".join(map(str, lp.output_shape)), f"{lp.macs:,}",
                   f"{lp.ops:,}", str(lp.weight_bits) if lp.weights else "", _format_label(lp, lp.storage_format),
                   f"{lp.flash_bytes:,}", _format_label(lp, lp.rest_format), f"{lp.rest_bytes:,}" if lp.weights else "",
                   f"{lp.activation_bytes:,}"]
            if hw:
                row += [f"{lp.latency_ms:.4f}", f"{lp.energy_uj:.3f}"]
            t.add_row(*row)
        return t

    def summary_lines(self) -> list[str]:
        lines = [f"MACs {self.macs:,}  ops {self.ops:,}  flash {self.flash_bytes:,} B  peak RAM (arena) {self.peak_ram_bytes:,} B"]
        if self.bytes_at_rest:
            lines.append(f"at rest {self.bytes_at_rest:,} B: {self.float32_bytes / self.bytes_at_rest:.2f}x smaller than "
                         f"float32 dense ({self.float32_bytes:,} B)")
        if self.latency_ms is not None:
            lines.append(f"{self.hardware}: latency {self.latency_ms:.3f} ms  energy {self.energy_uj:.2f} uJ  "
                         f"fits {'yes' if self.fits else 'NO'}")
        for k, v in {**self.accuracy, **self.agreement}.items():
            lines.append(f"{k} = {v:.4f}")
        return lines


def _format_label(lp: LayerProfile, fmt: str) -> str:
    """``fmt`` with the codebook size of a clustered layer (``indexed k=32``); empty without weights."""
    if not lp.weights:
        return ""
    return f"{fmt} k={2 ** lp.codebook_bits}" if lp.codebook_bits and fmt != "dense" else fmt


def _load_hardware(hardware: Any):
    if hardware is None or hasattr(hardware, "estimate_layer"):
        return hardware
    from edgeflow.hardware import load as load_hw

    try:
        return load_hw(hardware)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise RuntimeModelError(f"hardware {hardware!r}: {exc}") from None


def layer_costs(program, hardware=None, input_shapes=None) -> list[LayerProfile]:
    """One ``LayerProfile`` per IR node, from its public fields, the static shapes and the cost
    rules of ``edgeflow.runtime.costs`` (weights in the best storage format ``hardware`` supports)."""
    shapes = program.shapes(input_shapes)
    tensors = program.ir.tensors
    hw = _load_hardware(hardware)
    out = []
    for i, node in enumerate(program.ir.nodes):
        ins = [shapes[n] for n in node.inputs]
        outs = [shapes[n] for n in node.outputs]
        macs = costs.macs(node, ins, outs)
        ops = costs.ops(node, ins, outs)
        w = costs.weights(node)
        nw = int(w.size) if w is not None else 0
        bits = int(node.attrs["weight_bits"]) if nw else 0
        sparsity = float((w == 0).mean()) if nw else 0.0
        wbytes = costs.weight_bytes(node)
        fmt = rest_fmt = "dense"
        rest = wbytes
        sizes: dict[str, int] = {}
        if nw:
            from edgeflow.hardware.storage import at_rest_format, best_format, storage_bytes

            # rows = output channels, as the model-side analysis views the weight (fc weights are (K, N))
            sizes = storage_bytes(w.T if node.kind == "fully_connected" else w, bits)
            rest_fmt, rest = at_rest_format(sizes)
            if hw is not None:
                fmt, wbytes = best_format(sizes, tuple(getattr(hw.cfg, "sparse_formats", ("dense",))) + ("dense",))
        other = costs.bias_bytes(node) + costs.requant_bytes(node) + costs.table_bytes(node)
        flash = int(wbytes) + other
        act = 0 if node.is_view else sum(int(np.prod(shapes[n])) * tensors[n].dtype.itemsize
                                         for n in list(node.inputs) + list(node.outputs))
        nb = int(node.params["bias"].size) if nw and "bias" in node.params else 0
        lp = LayerProfile(i, node.name, node.kind, outs[0] if outs else (), macs, ops, nw, bits, sparsity, flash, act,
                          fmt, nb, rest_fmt, int(rest) + 4 * nb, int(node.attrs.get("codebook_bits", 0)))
        if hw is not None and not node.is_view:
            est = hw.estimate_layer(macs, wbytes + other, act, bits=bits or 8, sparsity=sparsity, ops=ops,
                                    sparse_kernel=fmt in ZERO_SKIPPING_FORMATS, name=node.name, kind=node.kind,
                                    decode_weights=sizes["nnz"] if fmt == "huffman" else 0)
            lp.latency_ms, lp.energy_uj, lp.bound = float(est.latency_ms), float(est.energy_uj), str(est.bound)
            lp.compute_cycles, lp.memory_cycles = float(est.compute_cycles), float(est.memory_cycles)
            lp.overhead_cycles = float(est.overhead_cycles)
        out.append(lp)
    return out


def _batches(dataset: Any, max_samples: int | None, batch_size: int):
    """Yield (x numpy float32, y numpy int or None) batches from arrays, a (x, y) pair or a loader."""
    def to_np(a):
        if a is None:
            return None
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        return np.asarray(a)

    seen = 0
    if isinstance(dataset, tuple) and len(dataset) == 2 and hasattr(dataset[0], "shape"):
        x, y = to_np(dataset[0]), to_np(dataset[1])
        items = ((x[i:i + batch_size], None if y is None else y[i:i + batch_size]) for i in range(0, len(x), batch_size))
    elif hasattr(dataset, "shape"):
        x = to_np(dataset)
        items = ((x[i:i + batch_size], None) for i in range(0, len(x), batch_size))
    else:
        items = ((b[0], b[1] if len(b) > 1 else None) if isinstance(b, (tuple, list)) else (b, None) for b in dataset)
    for bx, by in items:  # not x, y: the generators above read those
        bx, by = to_np(bx), to_np(by)
        if max_samples is not None and seen + len(bx) > max_samples:
            bx = bx[: max_samples - seen]
            by = None if by is None else by[: max_samples - seen]
        if len(bx) == 0:
            break
        yield bx, by
        seen += len(bx)
        if max_samples is not None and seen >= max_samples:
            break


def onnxruntime_reference(path: str | Path):
    """A callable x -> first output of onnxruntime at ORT_ENABLE_ALL on ``path`` (CPU)."""
    from edgeflow.export.ort import ort_session

    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def model_input(program, x: np.ndarray, rounding: str) -> np.ndarray:
    """``x`` as the program's first input takes it: float samples for an integer input are quantized
    with the input's own parameters (a ``.tflite`` file's), NCHW samples for an NHWC input transposed."""
    gi = program.inputs[0]
    want = tuple(gi.shape[1:])
    if x.ndim == 4 and tuple(x.shape[1:]) != want and (x.shape[2], x.shape[3], x.shape[1]) == want:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    spec = program.tensors.get(gi.name)
    if x.dtype.kind == "f" and gi.dtype.kind in "iu" and spec is not None and spec.scale is not None:
        quantize = quant.quantize_tflm if rounding == "tflm" else quant.quantize_linear
        return quantize(x, spec.scale, spec.zero_point, gi.dtype)
    return x.astype(gi.dtype, copy=False)


def litert_reference(path: str | Path):
    """A callable x -> LiteRT's output with the reference kernels (``BUILTIN_REF``), sample by sample."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        outs = []
        for k in range(len(x)):
            it.set_tensor(i, x[k:k + 1])
            it.invoke()
            outs.append(it.get_tensor(o)[0].copy())
        return np.stack(outs)

    return run


def _default_reference(program) -> Any:
    """onnxruntime for ONNX files; LiteRT for .tflite files when ``ai-edge-litert`` is installed."""
    from edgeflow.runtime.frontends.tflite import is_tflite

    if program.path is None:
        return None
    if not is_tflite(program.path):
        return "onnxruntime"
    try:
        return litert_reference(program.path)
    except ImportError:
        return None


def evaluate(program, dataset: Any, reference: Any = "onnxruntime", max_samples: int | None = None,
             batch_size: int = 256, rounding: str | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Accuracy (percent, needs labels) and agreement with ``reference`` on ``dataset``.

    Agreement: ``agreement`` = share of bit-equal output elements (percent), ``max_lsb_diff`` =
    largest difference in units of the output's quantization step (when the output is a
    dequantized int8 tensor), ``top1_agreement`` = share of samples with the same arg-max (percent).
    """
    if reference == "onnxruntime":
        if program.path is None:
            raise RuntimeModelError("agreement with onnxruntime needs the program's ONNX file")
        reference = onnxruntime_reference(program.path)
    lsb = _output_step(program)
    correct = total = 0
    eq = elems = top1 = 0
    max_diff = 0.0
    for x, y in _batches(dataset, max_samples, batch_size):
        x = model_input(program, x, rounding or program.rounding)
        out = program.run(x, rounding=rounding)[0]
        if y is not None and out.ndim >= 2 and y.ndim == 1:
            correct += int((out.reshape(len(x), -1).argmax(-1) == y).sum())
            total += len(x)
        if reference is not None:
            ref = np.asarray(reference(x))
            eq += int((ref == out).sum())
            elems += out.size
            d = np.abs(ref.astype(np.float64) - out.astype(np.float64)).max(initial=0.0)
            max_diff = max(max_diff, float(d / lsb) if lsb else float(d))
            if out.ndim >= 2:
                top1 += int((ref.reshape(len(x), -1).argmax(-1) == out.reshape(len(x), -1).argmax(-1)).sum())
    acc = {"test_acc": percent_correct(correct, total)} if total else {}
    agree = {}
    if elems:
        agree = {"agreement": 100.0 * eq / elems, "max_lsb_diff": max_diff}
        n = elems // max(1, int(np.prod(out.shape[1:])))
        if out.ndim >= 2:
            agree["top1_agreement"] = 100.0 * top1 / max(1, n)
    return acc, agree


def fakequant_agreement(program, model: Any, dataset: Any, max_samples: int | None = None,
                        batch_size: int = 256, program_acc: bool = False) -> dict[str, float]:
    """Simulation against deployment on ``dataset``: ``fakequant_top1_agreement``, the share (percent)
    of samples where ``model``'s own forward (a torch module, e.g. fake-quantized after PTQ/QAT) and
    the integer ``program`` pick the same class, and ``fakequant_test_acc``, the model's accuracy
    (the program's is ``evaluate``'s ``test_acc``; with ``program_acc`` it is also measured here, on
    the same samples, as ``runtime_test_acc``)."""
    import torch

    model = model.eval()
    device = next(iter(model.parameters()), torch.zeros(())).device
    same = seen = correct = labelled = right = 0
    for x, y in _batches(dataset, max_samples, batch_size):
        ours = program.run(model_input(program, x, program.rounding))[0].reshape(len(x), -1).argmax(-1)
        with torch.no_grad():
            sim = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)).float().cpu().numpy()
        sim = sim.reshape(len(x), -1).argmax(-1)
        same += int((ours == sim).sum())
        seen += len(x)
        if y is not None and y.ndim == 1:
            correct += int((sim == y).sum())
            right += int((ours == y).sum())
            labelled += len(x)
    out = {"fakequant_top1_agreement": 100.0 * same / max(1, seen)}
    if labelled:
        out["fakequant_test_acc"] = percent_correct(correct, labelled)
        if program_acc:
            out["runtime_test_acc"] = percent_correct(right, labelled)
    return out


def _output_step(program) -> float | None:
    """Quantization step of the first output if it is a DequantizeLinear of an int8 tensor."""
    for node in program.ir.nodes:
        if node.kind == "dequantize" and program.output_names and node.outputs[0] == program.output_names[0]:
            s = node.params["scale"].reshape(-1)
            return float(s[0]) if s.size == 1 else None
    return None


def profile(program, hardware: Any = None, dataset: Any = None, reference: Any = None, input_shapes=None,
            max_samples: int | None = None, batch_size: int = 256, rounding: str | None = None) -> Profile:
    hw = _load_hardware(hardware)
    layers = layer_costs(program, hw, input_shapes)
    plan = program.plan_memory(input_shapes)
    macs = sum(lp.macs for lp in layers)
    ops = sum(lp.ops for lp in layers)
    flash = sum(lp.flash_bytes for lp in layers)
    from edgeflow.runtime.frontends.tflite import is_tflite

    if program.path is not None and is_tflite(program.path):
        flash = program.path.stat().st_size  # the flatbuffer sits in flash as it is (TFLite Micro)
    lat = en = None
    fits = None
    if hw is not None:
        lat = sum(lp.latency_ms for lp in layers)
        en = sum(lp.energy_uj for lp in layers)
        cfg = getattr(hw, "cfg", None)
        if cfg is not None and hasattr(cfg, "flash_bytes"):
            fits = flash <= int(cfg.flash_bytes) and plan.arena_bytes <= int(cfg.ram_bytes)
    prof = Profile(layers, macs, ops, flash, plan.arena_bytes, lat, en, fits, getattr(hw, "name", None),
                   rounding or program.rounding, plan)
    if dataset is not None:
        ref = _default_reference(program) if reference is None else reference
        ref = None if ref is False else ref
        prof.accuracy, prof.agreement = evaluate(program, dataset, ref, max_samples, batch_size, rounding)
    return prof
