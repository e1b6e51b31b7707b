"""Schemas of the ``model`` config group, one dataclass per zoo model (torch-free).

``MODEL_SCHEMAS`` maps a model's ``name`` to its schema. ``input_shape`` and ``num_classes`` come
from the dataset (``conf/model/*.yaml`` interpolate them); each schema checks in ``__post_init__``
that the dataset's shape fits the model (rank, minimum sizes) and raises ``ConfigError`` with the
bare key otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from edgeflow.core.errors import ConfigError, require

__all__ = [
    "MODEL_SCHEMAS", "ModelConfig", "MLPConfig", "CNNConfig", "ResNet8Config", "DSCNNConfig",
    "MobileNetV1Config", "AutoEncoderConfig", "TCNConfig",
]


@dataclass
class ModelConfig:
    """Base of every model schema. ``input_shape`` and ``num_classes`` come from the dataset."""

    name: str = MISSING
    input_shape: list[int] = MISSING
    num_classes: int = MISSING

    #: human-readable layout the model expects, and the rank of ``input_shape`` (None = any)
    expects: ClassVar[str] = "any shape"
    rank: ClassVar[int | None] = None

    def __post_init__(self) -> None:
        require(self.num_classes >= 1, "num_classes", "an integer >= 1", self.num_classes)
        if self.rank is not None and len(self.input_shape) != self.rank:
            raise ConfigError("name", f"{self.name} expects input_shape {self.expects}, but the dataset "
                                      f"gives {list(self.input_shape)}; pick a model for this dataset")
        self.check_input()

    def check_input(self) -> None:
        """Model-specific checks of ``input_shape`` beyond its rank (override where needed)."""


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
        require(self.alpha > 0 and int(8 * self.alpha) >= 1, "alpha", "a float >= 0.125", self.alpha)
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
    expects: ClassVar[str] = "(C, L) for 1-D signals"
    rank: ClassVar[int | None] = 2

    def check_input(self) -> None:
        _positive_list(self.channels, "channels")
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "an odd integer >= 1",
                self.kernel_size)


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "mlp": MLPConfig, "cnn": CNNConfig, "resnet8": ResNet8Config, "dscnn": DSCNNConfig,
    "mobilenet_v1": MobileNetV1Config, "autoencoder": AutoEncoderConfig, "tcn": TCNConfig,
}
