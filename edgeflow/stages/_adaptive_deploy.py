"""An adaptive system deployed as integer parts (not a stage kind: the leading underscore keeps it
out of discovery). Used by ``export`` and ``profile`` when the state holds an adaptive system
(``models["adaptive"]``, from the ``adaptive`` stage) made of separate parts: big/little, variable
width with ``quantize`` (one plain model per width) and early exit with ``quantize`` (backbone
segments and exit heads):

- ``export_adaptive``: one ONNX file per part (``adaptive/<part>.onnx``: QDQ int8 when the parts carry
  quantizers) and ``adaptive/policy.json`` — the order of the paths, their files, the thresholds,
  the confidence measure and the calibration rule; for early exit also ``chain`` (per path: the
  segment it runs on the previous segment's output and the head it reads, null for the final
  classifier) and ``boundaries`` (each segment's int8 output: scale, zero point, shape, the files
  that read it; the files pass these integers from part to part, ``_adaptive_onnx``); recorded as
  the state's artifact ``adaptive_policy``, bound to the system's version;
- ``profile_adaptive``: runs every part on the int8 reference runtime, costs each on the run's
  target, re-calibrates the threshold on the **integer** scores of the validation split with the
  policy's rule, and reports the system on the test split at that threshold: accuracy, shares,
  expected energy / latency, and ``decision_agreement`` (% of test samples served by the same path
  with the same answer as the PyTorch system in the state, at its own threshold);
- ``run_policy``: what a device runs — the paths in order, each sample leaving at the first path
  whose confidence is above θ, charged only for the parts it ran.

Costs of a path (``calibrate``'s ``path_costs[k]``: what path ``k`` adds): its file (big/little,
widths) or its segment plus its head (early exit); the reference is the biggest path alone (the last
file; early exit: every segment, no head).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import numpy as np

    from edgeflow.state import StageContext, State

ADAPTIVE = "adaptive"
POLICY = "policy.json"
ARTIFACT = "adaptive_policy"


def _system(state: State) -> Any:
    """The state's adaptive system when it is made of exportable parts, else None (a float early-exit
    or slimmable system shares weights between its paths)."""
    system = state.models.get(ADAPTIVE)
    if system is None:
        return None
    if hasattr(system, "parts"):
        return system
    from edgeflow.methods.quantization import is_quantized

    return system if hasattr(system, "segments") and is_quantized(system.segments[0]) else None


def _chain_parts(system: Any, input_shape: tuple[int, ...]) -> tuple[list[tuple[str, Any, tuple[int, ...]]], dict]:
    """Early exit: ``[(file stem, module, input shape)]`` and the policy's ``chain``."""
    from edgeflow.methods.adaptive.int8 import segment_shapes

    shapes = segment_shapes(system, tuple(input_shape))
    parts, chain = [], []
    for k, seg in enumerate(system.segments):
        name = system.path_names[k]
        parts.append((f"segment{k + 1}", seg, shapes[k]))
        head = None
        if k < len(system.heads):
            parts.append((name, system.heads[k], shapes[k + 1]))
            head = f"{name}.onnx"
        chain.append({"path": name, "segment": f"segment{k + 1}.onnx", "head": head})
    return parts, {"chain": chain}


def export_adaptive(state: State, out_dir: Path, opset: int) -> tuple[State, dict[str, float]]:
    """Write the parts and the policy of the state's adaptive system; ``(state, {})`` without one."""
    from edgeflow.export import export_model

    system = _system(state)
    if system is None:
        return state, {}
    folder = out_dir / ADAPTIVE
    folder.mkdir(parents=True, exist_ok=True)
    chained = hasattr(system, "segments")
    if chained:
        parts, extra = _chain_parts(system, state.input_shape)
    else:
        parts, extra = [(n, p, tuple(state.input_shape)) for n, p in zip(system.path_names, system.parts)], {}
    files = [export_model(module, shape, folder / f"{stem}.onnx", opset=opset).name for stem, module, shape in parts]
    if chained:
        extra["boundaries"] = _int8_boundaries(folder, extra["chain"], [p[2] for p in parts])
    policy = {"system": system.system, "order": system.path_names, "files": files, **extra,
              "thresholds": [float(t) for t in system.thresholds], "measure": system.measure,
              "calibration": dict(system.calibration)}
    path = folder / POLICY
    path.write_text(json.dumps(policy, indent=2))
    return state.with_artifact(ARTIFACT, path, model=ADAPTIVE), {"adaptive_parts": float(len(files))}


def _int8_boundaries(folder: Path, chain: list[dict], shapes: list[tuple[int, ...]]) -> dict[str, dict]:
    """Make every segment but the last return its int8 feature map and every part after a segment (its
    head, the next segment) take it as int8 input; checks both sides have the same scale and zero
    point. ``shapes``: the input shape of every part, in file order. The policy's ``boundaries``."""
    from edgeflow.stages._adaptive_onnx import int8_boundary

    last = len(chain) - 1
    found = {}
    for k, step in enumerate(chain):
        found[step["segment"]] = int8_boundary(folder / step["segment"], int8_input=k > 0, int8_output=k < last)
        if step["head"]:
            found[step["head"]] = int8_boundary(folder / step["head"], int8_input=True, int8_output=False)
    boundaries = {}
    for k, step in enumerate(chain[:-1]):
        out, readers = found[step["segment"]]["output"], [step["head"], chain[k + 1]["segment"]]
        for reader in readers:
            if found[reader]["input"] != out:
                raise ValueError(f"{reader}: input quantization {found[reader]['input']} differs from "
                                 f"{step['segment']}'s output {out}")
        boundaries[step["segment"]] = {"dtype": "int8", "scale": out[0], "zero_point": out[1],
                                       "shape": list(shapes[2 * k + 1]), "read_by": readers}
    return boundaries


def _steps(policy: dict) -> list[tuple[str, str | None]]:
    """Per path: the file it runs and the head file reading that file's output (None: the output is the logits)."""
    if "chain" in policy:
        return [(c["segment"], c["head"]) for c in policy["chain"]]
    return [(f, None) for f in policy["files"]]


def _path_costs(policy: dict, parts: dict[str, dict[str, float]]) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``calibrate``'s per-path costs (what each path adds) and the reference (the biggest path alone)."""
    from edgeflow.methods.adaptive import calibrate as cal

    steps = _steps(policy)
    costs = {k: [parts[f][k] + (parts[h][k] if h else 0.0) for f, h in steps] for k in cal.COSTS}
    if "chain" in policy:
        return costs, {k: sum(parts[f][k] for f, _ in steps) for k in cal.COSTS}
    return costs, {k: parts[steps[-1][0]][k] for k in cal.COSTS}


def _logits(programs: dict[str, Any], policy: dict, x: np.ndarray) -> list[np.ndarray]:
    """Every path's float logits on every sample of ``x`` (a chain hands each segment's int8 output on)."""
    import numpy as np

    out, carry = [], x
    for file, head in _steps(policy):
        h = programs[file].run(carry)[0]
        out.append(np.asarray(programs[head].run(h)[0] if head else h, dtype=np.float32))
        carry = h if "chain" in policy else x
    return out


def _runtime_outputs(programs: dict[str, Any], policy: dict, loader: Iterable) -> tuple[Any, Any, Any]:
    """``path_outputs`` of the integer system: confidences ``[P, N]``, predictions ``[P, N]``, labels ``[N]``."""
    import numpy as np
    import torch

    from edgeflow.methods.adaptive import confidence

    conf, pred, labels = [], [], []
    for x, y in loader:
        logits = [torch.from_numpy(lg) for lg in _logits(programs, policy, x.numpy())]
        conf.append(torch.stack([confidence(lg, policy["measure"]) for lg in logits]).numpy())
        pred.append(torch.stack([lg.argmax(1) for lg in logits]).numpy())
        labels.append(y.numpy())
    return np.concatenate(conf, axis=1), np.concatenate(pred, axis=1), np.concatenate(labels)


def run_policy(programs: dict[str, Any], policy: dict, x: np.ndarray, theta: float,
               parts: dict[str, dict[str, float]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The device's run of ``x`` at threshold ``theta``: the answer and the serving path of every
    sample, and what each sample was charged (``{cost: [N]}``: the parts it ran, from ``parts``' costs)."""
    import numpy as np
    import torch

    from edgeflow.methods.adaptive import calibrate as cal
    from edgeflow.methods.adaptive import confidence

    n = len(x)
    steps = _steps(policy)
    answer, served = np.zeros(n, dtype=np.int64), np.full(n, len(steps) - 1)
    charged = {k: np.zeros(n) for k in cal.COSTS}
    idx, carry = np.arange(n), x
    for k, (file, head) in enumerate(steps):
        h = programs[file].run(carry)[0]
        logits = np.asarray(programs[head].run(h)[0] if head else h, dtype=np.float32)
        for c in cal.COSTS:
            charged[c][idx] += parts[file][c] + (parts[head][c] if head else 0.0)
        stop = np.ones(len(idx), dtype=bool) if k == len(steps) - 1 else \
            confidence(torch.from_numpy(logits), policy["measure"]).numpy() > theta
        answer[idx[stop]], served[idx[stop]] = logits[stop].argmax(1), k
        idx = idx[~stop]
        carry = h[~stop] if "chain" in policy else x[idx]
        if not len(idx):
            break
    return answer, served, charged


def _device_run(programs: dict[str, Any], policy: dict, loader: Iterable, theta: float,
                parts: dict[str, dict[str, float]]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``run_policy`` over every batch of ``loader``, concatenated."""
    import numpy as np

    runs = [run_policy(programs, policy, x.numpy(), theta, parts) for x, _ in loader]
    return (np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs]),
            {k: np.concatenate([r[2][k] for r in runs]) for k in runs[0][2]})


def _load(folder: Path, rounding: str) -> tuple[dict, dict[str, Any]]:
    from edgeflow import runtime

    policy_path = Path(folder) / POLICY
    if not policy_path.is_file():
        raise ValueError(f"{folder}: a folder must hold an adaptive system's {POLICY} (export/adaptive/)")
    policy = json.loads(policy_path.read_text())
    return policy, {f: runtime.load(Path(folder) / f, rounding=rounding) for f in policy["files"]}


def profile_adaptive(state: State, ctx: StageContext, rounding: str) -> dict[str, float]:
    """The integer system's figures (bare names under ``adaptive/``); ``{}`` without an exported policy."""
    import numpy as np
    import torch

    from edgeflow.methods.adaptive import calibrate as cal

    path = state.artifact(ARTIFACT)
    if path is None:
        return {}
    policy, programs = _load(path.parent, rounding)
    parts = {f: p.profile(hardware=ctx.hardware).metrics() for f, p in programs.items()}
    costs, reference = _path_costs(policy, parts)
    conf, pred, y = _runtime_outputs(programs, policy, ctx.data.val_dataloader())
    big_val = 100.0 * float(np.count_nonzero(pred[-1] == y)) / len(y)
    curve = cal.sweep(conf, pred, y, costs, reference, cal.thresholds(conf))
    rule, objective = policy["calibration"]["rule"], policy["calibration"]["objective"]
    theta = cal.choose(curve, rule, big_val, objective).point.theta
    conf_t, pred_t, y_t = _runtime_outputs(programs, policy, ctx.data.test_dataloader())
    point = cal.evaluate_point(theta, conf_t, pred_t, y_t, costs, reference)
    answer, served, charged = _device_run(programs, policy, ctx.data.test_dataloader(), theta, parts)
    system = state.models[ADAPTIVE].eval()
    with torch.no_grad():
        routed = [system.route(x) for x, _ in ctx.data.test_dataloader()]
    torch_served = torch.cat([s for _, s in routed]).numpy()
    torch_answer = torch.cat([o.argmax(1) for o, _ in routed]).numpy()
    agree = (torch_served == served) & (torch_answer == answer)
    metrics = {"adaptive/test_acc": point.acc, "adaptive/theta": theta,
               "adaptive/big_test_acc": 100.0 * float(np.count_nonzero(pred_t[-1] == y_t)) / len(y_t),
               "adaptive/decision_agreement": 100.0 * float(np.count_nonzero(agree)) / len(agree),
               "adaptive/expected_energy_uj": float(charged["energy_uj"].mean()),
               "adaptive/expected_latency_ms": float(charged["latency_ms"].mean()),
               "adaptive/energy_ratio": float(charged["energy_uj"].mean()) / reference["energy_uj"],
               "adaptive/latency_ratio": float(charged["latency_ms"].mean()) / reference["latency_ms"],
               "adaptive/big_energy_uj": reference["energy_uj"], "adaptive/big_latency_ms": reference["latency_ms"]}
    metrics.update({f"adaptive/share_{name}": share for name, share in zip(policy["order"], point.shares)})
    for file, m in parts.items():
        name = Path(file).stem
        metrics.update({f"adaptive/{name}/energy_uj": m["energy_uj"], f"adaptive/{name}/latency_ms": m["latency_ms"],
                        f"adaptive/{name}/flash_bytes": m["flash_bytes"],
                        f"adaptive/{name}/peak_ram_bytes": m["peak_ram_bytes"]})
    return metrics


def profile_folder(folder: Path, hardware: Any, data: Any, rounding: str) -> list[str]:
    """``edgeflow-profile <export>/adaptive/``: the lines describing each part on ``hardware`` and, with
    ``data`` (an iterable of ``(x, y)`` batches), the system at the policy's own thresholds (not
    re-calibrated: one split) — accuracy, the share each path serves and the expected costs."""
    from edgeflow.methods.adaptive import calibrate as cal

    policy, programs = _load(folder, rounding)
    parts = {f: p.profile(hardware=hardware).metrics() for f, p in programs.items()}
    lines = [f"{Path(f).stem}: {m['macs']:,.0f} MACs, flash {m['flash_bytes']:,.0f} B, {m['latency_ms']:.4g} ms, "
             f"{m['energy_uj']:.4g} µJ" for f, m in parts.items()]
    if data is None:
        return lines
    costs, reference = _path_costs(policy, parts)
    conf, pred, y = _runtime_outputs(programs, policy, data)
    theta = policy["thresholds"][0]
    point = cal.evaluate_point(theta, conf, pred, y, costs, reference)
    shares = " / ".join(f"{n} {100 * s:.1f} %" for n, s in zip(policy["order"], point.shares))
    lines.append(f"system at θ={theta:.4g} ({policy['measure']}): {point.acc:.2f} % on {len(y)} samples, served by "
                 f"{shares}; expected {point.expected['energy_uj']:.4g} µJ ({point.ratio['energy_uj']:.3f} of "
                 f"{policy['order'][-1]}), {point.expected['latency_ms']:.4g} ms")
    return lines
