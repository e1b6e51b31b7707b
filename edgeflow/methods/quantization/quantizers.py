"""Fake-quantization primitives: straight-through estimators, range setting, weight and activation quantizers.

Conventions (TFLite / ONNX int8, see REFERENCE §1):

- ``real = scale · (q − zero_point)``; quantize is ``clamp(round_half_even(x / scale) + zp, qmin, qmax)``
  (a division, like onnxruntime's QuantizeLinear, so the torch fake-quant and the exported graph agree).
- Weights: symmetric, zero point 0, ``q ∈ [−(2^(b−1)−1), 2^(b−1)−1]`` (±127 at 8 bits), per output
  channel (axis 0) or per tensor.
- Activations: asymmetric, ``q ∈ [−2^(b−1), 2^(b−1)−1]`` (int8 at 8 bits), per tensor; the range
  always contains 0, so 0 (ReLU, zero padding) is exact. After a fused ReLU the range starts at 0,
  which gives ``zero_point = qmin`` (−128).
- Binary weights (``bits = 1``): ``α_c · sign(w)`` with ``α_c`` = mean |w| of output channel c
  (XNOR-Net); the gradient passes straight through where |w| ≤ 1 and is cancelled beyond.
- Power-of-two weights (``bits = b``, 2…4): ``s_c · ±2^k`` or 0, k ∈ [0, 2^(b−1)−2]; one sign bit plus
  a (b−1)-bit code (0 = zero, else exponent+1). At 4 bits the largest level is 64 ≤ 127, so the
  values fit an int8 container exactly.

Range setting (``method``): weights ``minmax``, ``mse``, ``percentile``, ``lsq``; activations
``minmax``, ``ema`` (moving-average min/max), ``percentile``, ``mse``, ``pact``, ``lsq``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.methods.quantization.spec import ACT_METHODS, WEIGHT_METHODS

_EPS = 1e-8
_MAX_SAMPLES = 1 << 18  # values kept per activation quantizer for the MSE / percentile search


# --------------------------------------------------------------------------- straight-through ops
def round_ste(x: Tensor) -> Tensor:
    """Round half to even in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def grad_scale(x: Tensor, factor: float) -> Tensor:
    """Value ``x``, gradient multiplied by ``factor`` (LSQ's step-size gradient scaling)."""
    return (x - x * factor).detach() + x * factor


class _SignSTE(torch.autograd.Function):
    """sign (0 → +1) forward; backward passes the gradient where |x| ≤ 1 and cancels it elsewhere."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: Tensor) -> Tensor:
    return _SignSTE.apply(x)


def fake_quant(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int) -> Tensor:
    """``(clamp(round(x / scale) + zp, qmin, qmax) − zp) · scale`` with a straight-through round.

    Gradients: to ``x`` inside the clamp range (STE), to ``scale`` / ``zero_point`` as LSQ derives them.
    """
    q = torch.clamp(round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def int_range(bits: int, signed_symmetric: bool) -> tuple[int, int]:
    """Integer range: symmetric weights ±(2^(b−1)−1); activations [−2^(b−1), 2^(b−1)−1]."""
    if signed_symmetric:
        m = 2 ** (bits - 1) - 1
        return -m, m
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def affine_qparams(lo: Tensor, hi: Tensor, qmin: int, qmax: int) -> tuple[Tensor, Tensor]:
    """Scale and (integer-valued, float-typed) zero point mapping [lo, hi] ∪ {0} onto [qmin, qmax]."""
    lo = torch.clamp(lo, max=0.0)
    hi = torch.clamp(hi, min=0.0)
    scale = torch.clamp((hi - lo) / float(qmax - qmin), min=_EPS)
    zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    return scale.float(), zp.float()


def _per_channel_view(t: Tensor, ndim: int) -> Tensor:
    return t.reshape(-1, *([1] * (ndim - 1)))


def _flat_channels(w: Tensor, per_channel: bool) -> Tensor:
    return w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)


# ------------------------------------------------------------------------------- weight quantizers
class WeightQuantizer(nn.Module):
    """Symmetric uniform weight quantizer (zero point 0), per output channel or per tensor.

    ``method``: ``minmax`` (max |w|), ``mse`` (clip ratio minimising ‖w − Q(w)‖², searched per
    channel), ``percentile`` (``percentile``-th percentile of |w|), ``lsq`` (learned step size,
    initialised by ``mse``). Non-learned scales follow the weights at every forward until
    ``freeze()``; the last scale is kept in the ``scale`` buffer (read by the exporter).
    """

    format = "uniform"

    def __init__(self, bits: int, channels: int, per_channel: bool = True, method: str = "minmax",
                 percentile: float = 99.99) -> None:
        super().__init__()
        if not 2 <= bits <= 8:
            raise ValueError(f"uniform weight bits must be in 2..8, got {bits}")
        if method not in WEIGHT_METHODS:
            raise ValueError(f"weight method must be one of {WEIGHT_METHODS}, got {method!r}")
        self.bits = int(bits)
        self.per_channel = bool(per_channel)
        self.method = method
        self.percentile = float(percentile)
        self.qmin, self.qmax = int_range(bits, signed_symmetric=True)
        n = channels if per_channel else 1
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.frozen = False
        self.enabled = True
        if method == "lsq":
            self.step = nn.Parameter(torch.ones(n))

    # -- range setting ------------------------------------------------------------------------
    @torch.no_grad()
    def _compute_scale(self, w: Tensor) -> Tensor:
        flat = _flat_channels(w, self.per_channel).abs()
        if self.method == "percentile":
            amax = torch.quantile(flat.float(), self.percentile / 100.0, dim=1)
        elif self.method in ("mse", "lsq"):
            amax = self._mse_amax(flat)
        else:
            amax = flat.amax(dim=1)
        return torch.clamp(amax / self.qmax, min=_EPS)

    @torch.no_grad()
    def _mse_amax(self, flat_abs: Tensor) -> Tensor:
        amax = flat_abs.amax(dim=1)
        ratios = torch.linspace(0.3, 1.0, 36, device=flat_abs.device)
        best_err = torch.full_like(amax, float("inf"))
        best = amax.clone()
        for r in ratios:
            s = torch.clamp(amax * r / self.qmax, min=_EPS)[:, None]
            err = ((torch.clamp(torch.round(flat_abs / s), 0, self.qmax) * s - flat_abs) ** 2).sum(dim=1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, amax * r, best)
        return best

    @torch.no_grad()
    def calibrate(self, w: Tensor, mask: Tensor | None = None) -> None:
        """Set the scale from ``w`` (and the LSQ step, the first time)."""
        s = self._compute_scale(w.detach())
        self.scale.copy_(s)
        if self.method == "lsq" and not bool(self.initialized):
            self.step.data.copy_(s)
        self.initialized.fill_(True)

    def freeze(self) -> None:
        self.frozen = True
        if self.method == "lsq":
            self.step.requires_grad_(False)

    def current_scale(self, w: Tensor) -> Tensor:
        """The scale the forward pass uses (updates the buffer unless frozen / learned)."""
        if self.method == "lsq":
            if not bool(self.initialized):
                self.calibrate(w)
            with torch.no_grad():
                self.scale.copy_(self.step.detach().abs().clamp_min(_EPS))
            return self.step.abs().clamp_min(_EPS)
        if not self.frozen or not bool(self.initialized):
            self.calibrate(w)
        return self.scale

    def forward(self, w: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.enabled:
            return w
        s = self.current_scale(w)
        if self.method == "lsq":
            s = grad_scale(s, 1.0 / math.sqrt(max(1, w[0].numel()) * self.qmax))
        s = _per_channel_view(s, w.ndim) if self.per_channel else s.reshape([1] * w.ndim)
        return fake_quant(w, s, torch.zeros_like(s), self.qmin, self.qmax)

    @torch.no_grad()
    def quantize_int(self, w: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Integer weights (int64 tensor, same shape) and per-channel/per-tensor float scale."""
        s = self.current_scale(w).detach()
        sv = _per_channel_view(s, w.ndim) if self.per_channel else s.reshape([1] * w.ndim)
        q = torch.clamp(torch.round(w / sv), self.qmin, self.qmax).to(torch.int64)
        return q, s.clone()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}, method={self.method}"


class BinaryWeightQuantizer(nn.Module):
    """Binary weights ``α_c · sign(w)``, ``α_c`` = mean |w| over channel c's kept weights (XNOR-Net).

    Gradient: straight through where |w| ≤ 1, zero beyond (BinaryConnect / XNOR-Net STE). Pruned
    weights (``mask`` = 0) stay 0. ``bits = 1``; exported as ±1 in an int8 container, scale ``α``.
    """

    format = "binary"
    bits = 1

    def __init__(self, channels: int, per_channel: bool = True) -> None:
        super().__init__()
        self.per_channel = bool(per_channel)
        self.qmin, self.qmax = -1, 1
        self.register_buffer("scale", torch.ones(channels if per_channel else 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.frozen = False
        self.enabled = True
        self.method = "mean_abs"

    def _alpha(self, w: Tensor, mask: Tensor | None) -> Tensor:
        a = w.abs() if mask is None else w.abs() * mask
        flat = _flat_channels(a, self.per_channel)
        if mask is None:
            count = torch.full((flat.shape[0],), flat.shape[1], dtype=w.dtype, device=w.device)
        else:
            count = _flat_channels(mask, self.per_channel).sum(dim=1).clamp_min(1)
        return (flat.sum(dim=1) / count).clamp_min(_EPS)

    def calibrate(self, w: Tensor, mask: Tensor | None = None) -> None:
        with torch.no_grad():
            self.scale.copy_(self._alpha(w.detach(), mask))
            self.initialized.fill_(True)

    def freeze(self) -> None:
        self.frozen = True

    def forward(self, w: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.enabled:
            return w
        if self.frozen and bool(self.initialized):
            alpha = self.scale
        else:
            alpha = self._alpha(w, mask)
            with torch.no_grad():
                self.scale.copy_(alpha.detach())
                self.initialized.fill_(True)
        alpha = _per_channel_view(alpha, w.ndim) if self.per_channel else alpha.reshape([1] * w.ndim)
        out = alpha * sign_ste(w)
        return out if mask is None else out * mask

    @torch.no_grad()
    def quantize_int(self, w: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if not (self.frozen and bool(self.initialized)):
            self.calibrate(w, mask)
        q = torch.where(w >= 0, 1, -1).to(torch.int64)
        if mask is not None:
            q = q * (mask != 0).to(torch.int64)
        return q, self.scale.detach().clone()

    def extra_repr(self) -> str:
        return f"bits=1, per_channel={self.per_channel}"


class PowerOfTwoWeightQuantizer(nn.Module):
    """Logarithmic weights ``s_c · sign(w) · 2^k`` (k ∈ [0, E−1], E = 2^(b−1) − 1) or 0.

    ``s_c = max|w_c| / 2^(E−1)``, so the largest weight maps to the top level; k = round(log2(|w|/s))
    and values with k < 0 become 0. Identity (straight-through) gradient. ``bits`` = code width b
    (2…4), e.g. 4 bits → levels 0, ±1, ±2, …, ±64 (× s_c), exact in an int8 container.
    """

    format = "pow2"

    def __init__(self, bits: int, channels: int, per_channel: bool = True) -> None:
        super().__init__()
        if not 2 <= bits <= 4:
            raise ValueError(f"power-of-two weight bits must be in 2..4 (int8 container), got {bits}")
        self.bits = int(bits)
        self.per_channel = bool(per_channel)
        self.levels = 2 ** (bits - 1) - 1  # number of exponents
        self.qmax = 2 ** (self.levels - 1)
        self.qmin = -self.qmax
        self.register_buffer("scale", torch.ones(channels if per_channel else 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.frozen = False
        self.enabled = True
        self.method = "minmax"

    def calibrate(self, w: Tensor, mask: Tensor | None = None) -> None:
        with torch.no_grad():
            amax = _flat_channels(w.detach().abs(), self.per_channel).amax(dim=1)
            self.scale.copy_(torch.clamp(amax / self.qmax, min=_EPS))
            self.initialized.fill_(True)

    def freeze(self) -> None:
        self.frozen = True

    def _int(self, w: Tensor) -> Tensor:
        if not (self.frozen and bool(self.initialized)):
            self.calibrate(w)
        s = _per_channel_view(self.scale, w.ndim) if self.per_channel else self.scale.reshape([1] * w.ndim)
        mag = (w.detach().abs() / s).clamp_min(1e-30)
        k = torch.round(torch.log2(mag))
        q = torch.where(k < 0, torch.zeros_like(mag), torch.exp2(k.clamp(max=self.levels - 1)))
        return torch.sign(w.detach()) * q

    def forward(self, w: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.enabled:
            return w
        q = self._int(w)
        s = _per_channel_view(self.scale, w.ndim) if self.per_channel else self.scale.reshape([1] * w.ndim)
        return w + (q * s - w).detach()

    @torch.no_grad()
    def quantize_int(self, w: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._int(w).to(torch.int64), self.scale.detach().clone()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}, levels=0,±1..±{self.qmax}"


def make_weight_quantizer(bits: int, channels: int, per_channel: bool = True, method: str = "minmax",
                          weight_format: str = "uniform", percentile: float = 99.99) -> nn.Module:
    """The weight quantizer for ``bits`` (1 → binary) and ``weight_format`` (uniform | pow2 | binary)."""
    if bits == 1 or weight_format == "binary":
        return BinaryWeightQuantizer(channels, per_channel)
    if weight_format == "pow2":
        return PowerOfTwoWeightQuantizer(bits, channels, per_channel)
    return WeightQuantizer(bits, channels, per_channel, method, percentile)


# --------------------------------------------------------------------------- activation quantizer
class ActQuantizer(nn.Module):
    """Asymmetric per-tensor activation fake-quantizer with an observer (optionally ReLU first).

    ``fused_relu``: apply ReLU before quantizing (the range then starts at 0, ``zero_point = qmin``).
    Statistics are collected while ``observing`` and the module is training or calibrating
    (``calibrating`` is set by :func:`edgeflow.methods.quantization.calibration_mode`).
    Methods: ``minmax`` (running min/max), ``ema`` (moving average of per-batch min/max, ``momentum``),
    ``percentile`` (mean of per-batch ``percentile`` / ``100 − percentile`` values), ``mse`` (clip
    range minimising the quantization MSE on a sample of observed values), ``pact`` (learned clip
    range, PACT gradient), ``lsq`` (learned step size and zero point, LSQ+).
    """

    def __init__(self, bits: int = 8, method: str = "minmax", fused_relu: bool = False,
                 momentum: float = 0.1, percentile: float = 99.99) -> None:
        super().__init__()
        if not 2 <= bits <= 8:
            raise ValueError(f"activation bits must be in 2..8, got {bits}")
        if method not in ACT_METHODS:
            raise ValueError(f"activation method must be one of {ACT_METHODS}, got {method!r}")
        self.bits = int(bits)
        self.method = method
        self.fused_relu = bool(fused_relu)
        self.momentum = float(momentum)
        self.percentile = float(percentile)
        self.qmin, self.qmax = int_range(bits, signed_symmetric=False)
        self.register_buffer("min_val", torch.zeros(()))
        self.register_buffer("max_val", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("zero_point", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.long))
        self.observing = True
        self.calibrating = False
        self.enabled = True
        self._samples: list[Tensor] = []
        if method == "pact":
            self.clip_lo = nn.Parameter(torch.zeros(()))
            self.clip_hi = nn.Parameter(torch.ones(()))
        elif method == "lsq":
            self.step = nn.Parameter(torch.ones(()))
            self.zp_param = nn.Parameter(torch.zeros(()))

    @property
    def learnable(self) -> bool:
        return self.method in ("pact", "lsq")

    # -- observing ------------------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, x: Tensor) -> None:
        x = x.detach().float()
        lo, hi = x.min(), x.max()
        n = int(self.num_batches)
        if self.method == "ema" and n > 0:
            self.min_val.mul_(1 - self.momentum).add_(self.momentum * lo)
            self.max_val.mul_(1 - self.momentum).add_(self.momentum * hi)
        elif self.method == "percentile":
            flat = x.flatten()
            if flat.numel() > 1_000_000:
                flat = flat[torch.randint(flat.numel(), (1_000_000,), device=flat.device)]
            p_lo = torch.quantile(flat, 1 - self.percentile / 100.0)
            p_hi = torch.quantile(flat, self.percentile / 100.0)
            self.min_val.copy_((self.min_val * n + p_lo) / (n + 1))
            self.max_val.copy_((self.max_val * n + p_hi) / (n + 1))
        elif n == 0:
            self.min_val.copy_(lo)
            self.max_val.copy_(hi)
        else:
            self.min_val.copy_(torch.minimum(self.min_val, lo))
            self.max_val.copy_(torch.maximum(self.max_val, hi))
        if self.method == "mse":
            flat = x.flatten()
            keep = min(flat.numel(), _MAX_SAMPLES // 8)
            if keep < flat.numel():
                flat = flat[torch.randint(flat.numel(), (keep,), device=flat.device)]
            self._samples.append(flat.cpu())
            total = sum(s.numel() for s in self._samples)
            while total > _MAX_SAMPLES and len(self._samples) > 1:
                total -= self._samples.pop(0).numel()
        self.num_batches.add_(1)
        if not self.learnable:
            self.compute_qparams(search=False)

    @torch.no_grad()
    def compute_qparams(self, search: bool = True) -> None:
        """Scale / zero point from the observed range; for ``mse`` the clipping search runs only when
        ``search`` (at the end of calibration and at ``freeze``), per-batch updates use min/max."""
        lo, hi = self.min_val.clone(), self.max_val.clone()
        if self.fused_relu:
            lo = torch.zeros_like(lo)
        if self.method == "mse" and self._samples and search:
            lo, hi = self._mse_range(torch.cat(self._samples).to(lo.device), lo, hi)
        self.scale, self.zero_point = affine_qparams(lo, hi, self.qmin, self.qmax)
        self.initialized.fill_(True)

    def _mse_range(self, x: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        if self.fused_relu:
            x = x.clamp_min(0)
        best, best_err = (lo, hi), float("inf")
        for r in torch.linspace(0.2, 1.0, 41):
            s, z = affine_qparams(lo * r, hi * r, self.qmin, self.qmax)
            q = torch.clamp(torch.round(x / s) + z, self.qmin, self.qmax)
            err = float((((q - z) * s - x) ** 2).mean())
            if err < best_err:
                best, best_err = (lo * r, hi * r), err
        return best

    @torch.no_grad()
    def init_learnable(self) -> None:
        """Start PACT / LSQ parameters from the observed range (after calibration)."""
        lo = torch.zeros(()) if self.fused_relu else self.min_val.clamp(max=0)
        hi = self.max_val.clamp(min=0)
        if self.method == "pact":
            self.clip_lo.data.copy_(lo)
            self.clip_hi.data.copy_(hi)
        elif self.method == "lsq":
            s, z = affine_qparams(lo, hi, self.qmin, self.qmax)
            self.step.data.copy_(s)
            self.zp_param.data.copy_(z)
        self.compute_qparams()

    def freeze(self) -> None:
        """Stop range updates (observers) and learning of PACT / LSQ parameters."""
        if self.observing and self.method == "mse" and self._samples:
            self.compute_qparams()
        self.observing = False
        self._samples = []
        for p in self.parameters(recurse=False):
            p.requires_grad_(False)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self.fused_relu:
            x = F.relu(x)
        if self.observing and (self.training or self.calibrating) and not (self.learnable and self.training
                                                                           and bool(self.initialized)):
            self.observe(x)
            if self.learnable:
                self.init_learnable()
        if not self.enabled or self.calibrating or not bool(self.initialized):
            return x
        if self.method == "pact":
            lo = torch.zeros_like(self.clip_lo) if self.fused_relu else self.clip_lo.clamp(max=0.0)
            hi = torch.maximum(self.clip_hi, lo + _EPS)
            xc = torch.minimum(torch.maximum(x, lo), hi)
            with torch.no_grad():
                s, z = affine_qparams(lo.detach(), hi.detach(), self.qmin, self.qmax)
                self.scale.copy_(s)
                self.zero_point.copy_(z)
            y = xc + (fake_quant(xc.detach(), s, z, self.qmin, self.qmax) - xc).detach()
        elif self.method == "lsq":
            s = grad_scale(self.step.abs().clamp_min(_EPS), 1.0 / math.sqrt(max(1, x[0].numel()) * self.qmax))
            if self.fused_relu:
                z = torch.full_like(self.zp_param, float(self.qmin))
            else:
                z = torch.clamp(round_ste(self.zp_param), self.qmin, self.qmax)
            with torch.no_grad():
                self.scale.copy_(s.detach())
                self.zero_point.copy_(z.detach())
            y = fake_quant(x, s, z, self.qmin, self.qmax)
        else:
            y = fake_quant(x, self.scale, self.zero_point, self.qmin, self.qmax)
        if not self.training and getattr(self, "tflm_rounding", False):  # graph input / global pool (``tflm.link``)
            from edgeflow.methods.quantization import tflm

            y = tflm.requantize_pool(self, x, y) if "_tflm_taps" in self.__dict__ else tflm.quantize_input(self, x, y)
        return y

    def extra_repr(self) -> str:
        return f"bits={self.bits}, method={self.method}, fused_relu={self.fused_relu}"
