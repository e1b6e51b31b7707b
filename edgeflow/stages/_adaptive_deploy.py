"""An adaptive system deployed as integer parts (not a stage kind: the leading underscore keeps it
out of discovery). Used by ``export`` and ``profile`` when the state holds a big/little system
(``models["adaptive"]``, from the ``adaptive`` stage):

- ``export_adaptive``: one ONNX file per part (``adaptive/<path>.onnx``: QDQ int8 when the parts carry
  quantizers) and ``adaptive/policy.json`` — the order of the paths, their files, the thresholds,
  the confidence measure and the calibration rule; recorded as the state's artifact
  ``adaptive_policy``, bound to the system's version;
- ``profile_adaptive``: runs every part on the int8 reference runtime, costs each on the run's
  target, re-calibrates the threshold on the **integer** scores of the validation split with the
  policy's rule, and reports the system on the test split at that threshold: accuracy, shares,
  expected energy / latency, and ``decision_agreement`` (% of test samples served by the same path
  with the same answer as the PyTorch system in the state, at its own threshold).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeflow.state import StageContext, State

ADAPTIVE = "adaptive"
POLICY = "policy.json"
ARTIFACT = "adaptive_policy"


def _system(state: State) -> Any:
    system = state.models.get(ADAPTIVE)
    return system if system is not None and hasattr(system, "parts") else None


def export_adaptive(state: State, out_dir: Path, opset: int) -> tuple[State, dict[str, float]]:
    """Write the parts and the policy of the state's big/little system; ``(state, {})`` without one."""
    from edgeflow.export import export_model

    system = _system(state)
    if system is None:
        return state, {}
    folder = out_dir / ADAPTIVE
    folder.mkdir(parents=True, exist_ok=True)
    files = [export_model(part, state.input_shape, folder / f"{name}.onnx", opset=opset).name
             for name, part in zip(system.path_names, system.parts)]
    policy = {"system": system.system, "order": system.path_names, "files": files,
              "thresholds": [float(t) for t in system.thresholds], "measure": system.measure,
              "calibration": dict(system.calibration)}
    path = folder / POLICY
    path.write_text(json.dumps(policy, indent=2))
    return state.with_artifact(ARTIFACT, path, model=ADAPTIVE), {"adaptive_parts": float(len(files))}


def _runtime_outputs(programs: list[Any], measure: str, loader: Any) -> tuple[Any, Any, Any]:
    import numpy as np
    import torch

    from edgeflow.methods.adaptive import confidence

    conf, pred, labels = [], [], []
    for x, y in loader:
        logits = [torch.from_numpy(np.asarray(p.run(x.numpy())[0], dtype=np.float32)) for p in programs]
        conf.append(torch.stack([confidence(lg, measure) for lg in logits]).numpy())
        pred.append(torch.stack([lg.argmax(1) for lg in logits]).numpy())
        labels.append(y.numpy())
    return np.concatenate(conf, axis=1), np.concatenate(pred, axis=1), np.concatenate(labels)


def profile_adaptive(state: State, ctx: StageContext, rounding: str) -> dict[str, float]:
    """The integer system's figures (bare names under ``adaptive/``); ``{}`` without an exported policy."""
    import numpy as np
    import torch

    from edgeflow import runtime
    from edgeflow.methods.adaptive import calibrate as cal

    path = state.artifact(ARTIFACT)
    if path is None:
        return {}
    policy = json.loads(path.read_text())
    programs = [runtime.load(path.parent / f, rounding=rounding) for f in policy["files"]]
    part_metrics = [p.profile(hardware=ctx.hardware).metrics() for p in programs]
    costs = {k: [m[k] for m in part_metrics] for k in cal.COSTS}
    reference = {k: costs[k][-1] for k in cal.COSTS}
    conf, pred, y = _runtime_outputs(programs, policy["measure"], ctx.data.val_dataloader())
    big_val = 100.0 * float(np.count_nonzero(pred[-1] == y)) / len(y)
    curve = cal.sweep(conf, pred, y, costs, reference, cal.thresholds(conf))
    rule, objective = policy["calibration"]["rule"], policy["calibration"]["objective"]
    theta = cal.choose(curve, rule, big_val, objective).point.theta
    conf_t, pred_t, y_t = _runtime_outputs(programs, policy["measure"], ctx.data.test_dataloader())
    point = cal.evaluate_point(theta, conf_t, pred_t, y_t, costs, reference)
    served = cal.served_path(conf_t, theta)
    answer = pred_t[served, np.arange(len(y_t))]
    system = state.models[ADAPTIVE].eval()
    with torch.no_grad():
        routed = [system.route(x) for x, _ in ctx.data.test_dataloader()]
    torch_served = torch.cat([s for _, s in routed]).numpy()
    torch_answer = torch.cat([o.argmax(1) for o, _ in routed]).numpy()
    agree = (torch_served == served) & (torch_answer == answer)
    metrics = {"adaptive/test_acc": point.acc, "adaptive/theta": theta,
               "adaptive/big_test_acc": 100.0 * float(np.count_nonzero(pred_t[-1] == y_t)) / len(y_t),
               "adaptive/decision_agreement": 100.0 * float(np.count_nonzero(agree)) / len(agree),
               "adaptive/expected_energy_uj": point.expected["energy_uj"],
               "adaptive/expected_latency_ms": point.expected["latency_ms"],
               "adaptive/energy_ratio": point.ratio["energy_uj"], "adaptive/latency_ratio": point.ratio["latency_ms"]}
    for name, share, m in zip(policy["order"], point.shares, part_metrics):
        metrics.update({f"adaptive/share_{name}": share, f"adaptive/{name}/energy_uj": m["energy_uj"],
                        f"adaptive/{name}/latency_ms": m["latency_ms"], f"adaptive/{name}/flash_bytes": m["flash_bytes"]})
    return metrics


def profile_folder(folder: Path, hardware: Any, data: Any, rounding: str) -> list[str]:
    """``edgeflow-profile <export>/adaptive/``: the lines describing each part on ``hardware`` and, with
    ``data`` (an iterable of ``(x, y)`` batches), the system at the policy's own thresholds (not
    re-calibrated: one split) — accuracy, the share each path serves and the expected costs."""
    from edgeflow import runtime
    from edgeflow.methods.adaptive import calibrate as cal

    policy_path = Path(folder) / POLICY
    if not policy_path.is_file():
        raise ValueError(f"{folder}: a folder must hold an adaptive system's {POLICY} (export/adaptive/)")
    policy = json.loads(policy_path.read_text())
    programs = [runtime.load(Path(folder) / f, rounding=rounding) for f in policy["files"]]
    parts = [p.profile(hardware=hardware).metrics() for p in programs]
    lines = [f"{name}: {m['macs']:,.0f} MACs, flash {m['flash_bytes']:,.0f} B, {m['latency_ms']:.4g} ms, "
             f"{m['energy_uj']:.4g} µJ" for name, m in zip(policy["order"], parts)]
    if data is None:
        return lines
    costs = {k: [m[k] for m in parts] for k in cal.COSTS}
    conf, pred, y = _runtime_outputs(programs, policy["measure"], data)
    theta = policy["thresholds"][0]
    point = cal.evaluate_point(theta, conf, pred, y, costs, {k: costs[k][-1] for k in cal.COSTS})
    shares = " / ".join(f"{n} {100 * s:.1f} %" for n, s in zip(policy["order"], point.shares))
    lines.append(f"system at θ={theta:.4g} ({policy['measure']}): {point.acc:.2f} % on {len(y)} samples, served by "
                 f"{shares}; expected {point.expected['energy_uj']:.4g} µJ ({point.ratio['energy_uj']:.3f} of "
                 f"{policy['order'][-1]}), {point.expected['latency_ms']:.4g} ms")
    return lines
