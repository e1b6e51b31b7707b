"""Schemas of the ``model`` config group (torch-free): one dataclass per zoo model, and
``TargetModelConfig`` for a user's own model (``_target_: mypkg.nets.MyNet``).

``MODEL_SCHEMAS`` maps a zoo model's ``name`` to its schema. ``input_shape`` and ``num_classes``
come from the dataset (``conf/model/*.yaml`` interpolate them); they may be null at validation when
the dataset is a user's datamodule that does not declare them, and are then filled in when the run
starts (``for_data``, which checks them again). Each zoo schema checks in ``__post_init__`` that
the shape fits the model (rank, minimum sizes) and raises ``ConfigError`` with the bare key
otherwise. ``checkpoint`` (every model) names trained weights to start from; the validator checks
it with ``edgeflow.models.checkpoint.check``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from edgeflow.core.errors import ConfigError, is_finite, require
from edgeflow.core.targets import TARGET_KEY, call_arguments, resolve

__all__ = [
    "MODEL_SCHEMAS", "ModelConfig", "TargetModelConfig", "MLPConfig", "CNNConfig", "ResNet8Config",
    "DSCNNConfig", "MobileNetV1Config", "AutoEncoderConfig", "TCNConfig",
]

RESERVED = ("input_shape", "num_classes", "checkpoint")  # keys of a model node that are not model options


def _check_common(cfg: ModelConfig | TargetModelConfig) -> None:
    """Checks every model config shares: the shape and class count, when known."""
    if cfg.input_shape is not None:
        shape = list(cfg.input_shape)
        require(len(shape) >= 1 and all(isinstance(d, int) and d >= 1 for d in shape), "input_shape",
                "a non-empty list of integers >= 1", shape)
    if cfg.num_classes is not None:
        require(isinstance(cfg.num_classes, int) and cfg.num_classes >= 1, "num_classes", "an integer >= 1",
                cfg.num_classes)


def _for_data(cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """``cfg`` with the data's shape and class count (checked again); a configured value that
    differs from the data's is a ``ConfigError``."""
    for key, value in (("input_shape", list(input_shape)), ("num_classes", int(num_classes))):
        configured = getattr(cfg, key)
        if configured is not None and (list(configured) if key == "input_shape" else configured) != value:
            raise ConfigError(key, f"is {configured} but the dataset gives {value}; leave it to the dataset "
                                   f"(${{dataset.{key}}})")
    return dataclasses.replace(cfg, input_shape=list(input_shape), num_classes=int(num_classes))


@dataclass
class ModelConfig:
    """Base of every zoo model schema. ``input_shape`` and ``num_classes`` come from the dataset."""

    name: str = MISSING
    input_shape: list[int] | None = MISSING
    num_classes: int | None = MISSING
    checkpoint: str | None = None

    #: human-readable layout the model expects, and the rank of ``input_shape`` (None = any)
    expects: ClassVar[str] = "any shape"
    rank: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check_sizes(self)
        if self.input_shape is None:
            return  # checked by for_data when the run knows the data's shape
        if self.rank is not None and len(self.input_shape) != self.rank:
            raise ConfigError("name", f"{self.name} expects input_shape {self.expects}, but the dataset "
                                      f"gives {list(self.input_shape)}; pick a model for this dataset")
        self.check_input()

    def check_input(self) -> None:
        """Model-specific checks of ``input_shape`` beyond its rank (override where needed)."""

    def options(self) -> dict[str, Any]:
        """The model's own options: the keyword arguments of ``build_model`` besides the shape."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("name", *RESERVED)}

    def for_data(self, input_shape: tuple[int, ...], num_classes: int) -> ModelConfig:
        """This config for data of ``input_shape`` and ``num_classes`` (checked again)."""
        return _for_data(self, input_shape, num_classes)


@dataclass
class TargetModelConfig:
    """A user's own model: ``_target_`` (here ``target``) is the import path of any callable that
    returns an ``nn.Module`` (a class or a function); the node's other keys, except ``input_shape``,
    ``num_classes`` and ``checkpoint``, are its keyword arguments (``kwargs``). ``input_shape``
    (a tuple) and ``num_classes`` are passed only when its signature names them.

    Validation imports the target and checks the arguments against its signature (a configured key
    it does not take, a parameter without default that nothing supplies).
    """

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] | None = None
    num_classes: int | None = None
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        fn = resolve(self.target, TARGET_KEY)
        call_arguments(fn, self.target, self.kwargs,
                       {"input_shape": self.input_shape, "num_classes": self.num_classes}, "")
        _check_common(self)

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> TargetModelConfig:
        """The config of a ``model`` node holding ``_target_`` (keys relative to ``model``)."""
        if "name" in node:
            raise ConfigError(TARGET_KEY, f"is set together with name={node['name']!r} (a zoo model); use one: "
                                          "a model YAML with _target_ and no name (override /model: <that file>)")
        kwargs = {k: v for k, v in node.items() if k != TARGET_KEY and k not in RESERVED}
        return cls(target=node[TARGET_KEY], kwargs=kwargs, **{k: node[k] for k in RESERVED if k in node})

    def for_data(self, input_shape: tuple[int, ...], num_classes: int) -> TargetModelConfig:
        """This config for data of ``input_shape`` and ``num_classes``."""
        return _for_data(self, input_shape, num_classes)


#: upper bound of every integer model option (widths, channels, blocks, kernel sizes): a typo such
#: as ``hidden=[1e12]`` is a config error, not an out-of-memory crash
MAX_SIZE = 65536


def _check_sizes(cfg: ModelConfig) -> None:
    """Every integer (or list of integers) model option is at most ``MAX_SIZE``."""
    for key, value in cfg.options().items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, int) and not isinstance(v, bool) and v > MAX_SIZE for v in values):
            raise ConfigError(key, f"must be at most {MAX_SIZE} (each entry), got {value!r}")


def _positive_list(values: list[int], key: str) -> None:
    require(len(values) > 0 and all(v >= 1 for v in values), key, "a non-empty list of integers >= 1", values)


@dataclass
class MLPConfig(ModelConfig):
    hidden: list[int] = field(default_factory=lambda: [128, 64])

    def check_input(self) -> None:
        require(all(v >= 1 for v in self.hidden), "hidden", "a list of integers >= 1", self.hidden)


@dataclass
class CNNConfig(ModelConfig):
    channels: list[int] = field(default_factory=lambda: [16, 32])
    dropout: float = 0.0
    expects: ClassVar[str] = "(C, H, W)"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        _positive_list(self.channels, "channels")
        require(0 <= self.dropout < 1, "dropout", "in [0, 1)", self.dropout)


@dataclass
class ResNet8Config(ModelConfig):
    filters: list[int] = field(default_factory=lambda: [16, 32, 64])
    expects: ClassVar[str] = "(C, H, W) with H, W >= 8"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(len(self.filters) == 3 and all(f >= 1 for f in self.filters), "filters",
                "three integers >= 1", self.filters)
        if min(self.input_shape[1:]) < 8:
            raise ConfigError("name", f"resnet8 expects input_shape {self.expects}, got {list(self.input_shape)}")


@dataclass
class DSCNNConfig(ModelConfig):
    width: int = 64
    blocks: int = 4
    expects: ClassVar[str] = "(C, H, W) with H >= 10, W >= 4 (MLPerf Tiny KWS: 1×49×10)"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(self.width >= 1, "width", "an integer >= 1", self.width)
        require(self.blocks >= 0, "blocks", "an integer >= 0", self.blocks)
        if self.input_shape[1] < 10 or self.input_shape[2] < 4:
            raise ConfigError("name", f"dscnn expects input_shape {self.expects}, got {list(self.input_shape)}")


@dataclass
class MobileNetV1Config(ModelConfig):
    alpha: float = 0.25
    expects: ClassVar[str] = "(C, H, W) with H, W >= 32"
    rank: ClassVar[int | None] = 3

    def check_input(self) -> None:
        require(is_finite(self.alpha) and 0.125 <= self.alpha <= 16, "alpha", "a finite float in [0.125, 16]",
                self.alpha)
        if min(self.input_shape[1:]) < 32:
            raise ConfigError("name", f"mobilenet_v1 expects input_shape {self.expects}, "
                                      f"got {list(self.input_shape)}")


@dataclass
class AutoEncoderConfig(ModelConfig):
    hidden: int = 128
    bottleneck: int = 8
    classify: bool = True

    def check_input(self) -> None:
        require(self.hidden >= 1, "hidden", "an integer >= 1", self.hidden)
        require(self.bottleneck >= 1, "bottleneck", "an integer >= 1", self.bottleneck)


@dataclass
class TCNConfig(ModelConfig):
    channels: list[int] = field(default_factory=lambda: [24, 24, 24, 24])
    kernel_size: int = 5
    kernel_sizes: list[int] | None = None   # per block (odd), instead of kernel_size for all
    dilations: list[int] | None = None      # per block, instead of 1, 2, 4, ...
    expects: ClassVar[str] = "(C, L) for 1-D signals"
    rank: ClassVar[int | None] = 2

    def check_input(self) -> None:
        _positive_list(self.channels, "channels")
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "an odd integer >= 1",
                self.kernel_size)
        for key in ("kernel_sizes", "dilations"):
            values = getattr(self, key)
            if values is None:
                continue
            require(isinstance(values, (list, tuple)) and len(values) == len(self.channels), key,
                    f"null or a list with one entry per block ({len(self.channels)})", values)
            _positive_list(list(values), key)
        if self.kernel_sizes is not None:
            require(all(k % 2 == 1 for k in self.kernel_sizes), "kernel_sizes", "a list of odd integers",
                    self.kernel_sizes)


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "mlp": MLPConfig, "cnn": CNNConfig, "resnet8": ResNet8Config, "dscnn": DSCNNConfig,
    "mobilenet_v1": MobileNetV1Config, "autoencoder": AutoEncoderConfig, "tcn": TCNConfig,
}
