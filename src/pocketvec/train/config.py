"""The validated training configuration (a JSON file, or a preset with overrides)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pocketvec.bounded_json import loads_bounded
from pocketvec.checks import check_number, check_text
from pocketvec.errors import ConfigError
from pocketvec.file_kinds import refuse_special
from pocketvec.ranges import TRAIN_RANGES
from pocketvec.runtime.gallery.views import MAX_VIEWS
from pocketvec.runtime.preprocess import reject_unknown_keys
from pocketvec.train.adapters import AdapterConfig
from pocketvec.train.encoder import EncoderConfig
from pocketvec.train.losses.margins import MarginConfig

LOSSES = ("margin", "triplet", "center")
AUGMENT_DEVICES = ("cpu", "gpu", "auto")
MAX_CONFIG_BYTES = 16 * 2**20  # a config file, or a run's config.json with its history


@dataclass(frozen=True)
class TrainConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    init: str = "imagenet"  # "imagenet" (EfficientNet-Lite0 from PyPI), "random", "base", or a run folder
    adapters: AdapterConfig = field(default_factory=lambda: AdapterConfig(kind="none"))
    trainable: tuple[str, ...] = ("*",)  # glob patterns of encoder parameters to train (besides adapters)
    loss: str = "margin"  # margin softmax via PartialFC; or "triplet" (triplet + pair) or "center" (+ margin)
    margin: MarginConfig = field(default_factory=MarginConfig)
    sample_rate: float = 1.0  # PartialFC: fraction of negative centres per step
    imprint_centres: bool = False  # start each class centre at the student's embedding of its clean image
    center_weight: float = 0.01
    # LocalMatchLoss: each photo's stride-16 map against its batch's clean maps, under the re-rank's score
    local_weight: float = 0.0
    # KL to the teacher's local scores of the same pairs (a teacher-photo cache built with --local-scores)
    local_distill_weight: float = 0.0
    # batches of groups of this many look-alike classes (the start model's nearest neighbours); 0/1 = random
    lookalike_group: int = 0
    # feature preservation: x (1 - cos) between each photo's embedding and the start model's of the same photo
    preserve_weight: float = 0.0
    teacher: str = ""  # "" = no distillation; a built-in or shipped name, or a local checkpoint folder
    teacher_photos: str = ""  # a teacher-photo cache folder (pocketvec.train.photo_cache): train from it
    distill_weight: float = 1.0
    distill_temperature: float = 0.1
    distill_align_weight: float = 0.0  # per-image cosine to the teacher's embedding, beside the relational KL
    kd_weight: float = 0.0  # Hinton KD over the teacher's ImageNet logits
    kd_temperature: float = 4.0
    policy: str = "documents"  # pseudo-class policy preset (pocketvec.data.pseudoclasses.PRESETS)
    merge_identical_classes: bool = True  # variants that render the same picture share one class
    augment: dict[str, Any] = field(default_factory=dict)  # AugmentConfig fields
    # where the photo simulation's pixel work runs: "cpu" (albumentations, in the data-loader processes),
    # "gpu" (torch, batched, on the training device: the GPU, or the CPU without one), "auto" (gpu with CUDA)
    augment_device: str = "auto"
    clean_view_fraction: float = 0.0  # share of training views that are the clean item, as the gallery sees it
    backgrounds: str = ""  # folder of background photos; "" = the data package's default
    epochs: int = 3
    steps_per_epoch: int = 0  # batches per epoch, all processes together; 0 = one pass over the pseudo-classes
    batch_classes: int = 16  # pseudo-classes per batch
    views_per_class: int = 2  # augmented views of each pseudo-class in a batch
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float = 5.0
    seed: int = 0
    # the held-out evaluation (pocketvec.train.evaluate): validation-simulator photos per item (0: none) ...
    eval_views: int = 2
    eval_gallery_views: int = 8  # ... against gallery rows blended with this many views, as `gallery build` makes
    # held-out evaluations during training besides the start; 0 = one per epoch (a budget run: its own count)
    evaluations: int = 0
    # end on the photos' crop (scale_fill / center_crop / both fused) that scores best held out
    choose_query_crop: bool = False
    budget_s: float = 0.0  # wall time for the whole run: the steps are fitted to it (pocketvec.train.budget)
    early_stopping_patience: int = 0  # epochs without a better Recall@1 before stopping; 0 = off
    checkpoint_every: int = 50  # steps between resumable checkpoints
    time_limit_s: float = 0.0  # stop (and save) after this much wall time; 0 = none
    workers: int = 0  # data-loader processes making augmented batches
    threads: int = 0  # torch CPU threads; 0 = the CPU count minus the workers (at least 1)
    max_steps: int = 0  # stop after this many steps in total; 0 = epochs decide
    int8_grid: bool = False  # round the final weights onto the int8 export's grid (pocketvec.int8_grid)
    # WiSE-FT: the weights that ship (and that the held-out evaluation scores) are start + wise_alpha *
    # (trained - start); 1.0 = the trained weights as they are
    wise_alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {list(LOSSES)}. Got {self.loss!r}.")
        if self.augment_device not in AUGMENT_DEVICES:
            raise ConfigError(f"augment_device must be one of {list(AUGMENT_DEVICES)}. Got {self.augment_device!r}.")
        for name, numbers in TRAIN_RANGES.items():  # the > 0 ones are checked again below
            numbers.check(name, getattr(self, name))
        check_number("eval_gallery_views", self.eval_gallery_views, 0, MAX_VIEWS, integer=True)
        for name in ("sample_rate", "lr", "distill_temperature", "kd_temperature"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0. Got {getattr(self, name)!r}.")
        if not self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1). Got {self.warmup_fraction!r}.")
        for name in ("init", "teacher", "teacher_photos", "policy", "backgrounds"):
            check_text(name, getattr(self, name), 4096, empty=True)
        for name in ("int8_grid", "choose_query_crop"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false. Got {getattr(self, name)!r}.")
        if not isinstance(self.augment, dict):
            raise ConfigError(f"augment must be a JSON object of AugmentConfig fields. Got {self.augment!r}.")
        if isinstance(self.trainable, str) or not isinstance(self.trainable, (list, tuple)) or not all(
                isinstance(p, str) and p for p in self.trainable):
            raise ConfigError(f"trainable must be a list of glob patterns (strings). Got {self.trainable!r}.")
        object.__setattr__(self, "trainable", tuple(self.trainable))
        if self.batch_classes * self.views_per_class < 2:
            raise ConfigError("a batch needs at least 2 images (batch_classes * views_per_class). "
                              f"Got {self.batch_classes} * {self.views_per_class}.")
        from pocketvec.data.augment import AugmentConfig
        from pocketvec.data.pseudoclasses import policy_from_name

        policy_from_name(self.policy)
        AugmentConfig.from_dict(self.augment)

    def device_augment(self, cuda: bool) -> bool:
        """Whether the photo simulation runs in torch on the training device."""
        return self.augment_device == "gpu" or (self.augment_device == "auto" and cuda)

    @property
    def batch_size(self) -> int:
        return self.batch_classes * self.views_per_class

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["encoder"] = self.encoder.to_dict()
        data["adapters"]["targets"] = list(self.adapters.targets)
        data["trainable"] = list(self.trainable)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        reject_unknown_keys(cls, data)
        data = dict(data)
        if "encoder" in data:
            data["encoder"] = EncoderConfig.from_dict(data["encoder"])
        if "adapters" in data:
            data["adapters"] = AdapterConfig.from_dict(data["adapters"])
        if "margin" in data:
            data["margin"] = MarginConfig.from_dict(data["margin"])
        return cls(**data)

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """Dotted keys reach nested configs: {"epochs": 2, "encoder.preprocess.input_size": 160}."""
        data = self.to_dict()
        for key, value in overrides.items():
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown override {key!r}: {part!r} is not a nested config. "
                                      f"Valid top-level keys: {sorted(f.name for f in fields(TrainConfig))}.")
                node = node[part]
            node[leaf] = value
        try:
            return TrainConfig.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid override in {sorted(overrides)}: {e}") from e


def load_train_config(path: str | Path) -> TrainConfig:
    """A training config file, or a run's config.json (its "train" section); any problem names the file."""
    path = Path(path)
    refuse_special(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: unreadable training config ({e.strerror or e})") from e
    data = loads_bounded(raw, str(path), "the training config", ConfigError, MAX_CONFIG_BYTES)
    if isinstance(data, dict) and "embedding_space_id" in data:  # a run's config.json
        data = data.get("train")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a run's config.json without its training config (\"train\")")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a training config must be a JSON object of settings. Got {type(data).__name__}.")
    try:
        return TrainConfig.from_dict(data)
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from e


__all__ = ["LOSSES", "TrainConfig", "load_train_config", "replace"]
