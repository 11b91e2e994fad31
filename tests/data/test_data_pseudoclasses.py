"""Pseudo-class expansion: class counts per policy and the pixels of each variant."""

from __future__ import annotations

import numpy as np
import pytest

from pocketvec.data.assets import demo_items_dir
from pocketvec.data.pseudoclasses import (
    PRESETS,
    PseudoClassPolicy,
    expand_pseudo_classes,
    num_classes,
    policy_from_name,
    render_variant,
)
from pocketvec.errors import ConfigError
from pocketvec.runtime.images import load_image


@pytest.mark.parametrize(
    ("preset", "per_item", "variants_per_item"),
    [("documents", 24, 24), ("symmetric", 12, 24), ("upright", 3, 3), ("single", 1, 1)],
)
def test_class_counts_per_policy(preset, per_item, variants_per_item):
    policy = policy_from_name(preset)
    variants = expand_pseudo_classes(["a", "b", "c"], policy)
    assert policy.classes_per_item == per_item
    assert num_classes(variants) == 3 * per_item
    assert len(variants) == 3 * variants_per_item
    assert sorted({v.class_id for v in variants}) == list(range(3 * per_item))
    # no class mixes two items
    owners = {}
    for v in variants:
        assert owners.setdefault(v.class_id, v.item_index) == v.item_index


def test_same_label_shares_classes_and_groups_merge():
    variants = expand_pseudo_classes(["a", "a", "b"], PRESETS["symmetric"])
    assert num_classes(variants) == 2 * 12
    by_key = {(v.item_index, v.rotation, v.flip, v.region): v.class_id for v in variants}
    assert by_key[(0, 0, False, "top")] == by_key[(1, 0, False, "top")] == by_key[(0, 180, False, "top")]
    assert by_key[(0, 0, False, "top")] != by_key[(0, 90, False, "top")]
    assert by_key[(0, 0, False, "top")] != by_key[(0, 0, True, "top")]
    flip_aug = expand_pseudo_classes(["a"], PseudoClassPolicy(flip="augment"))
    assert num_classes(flip_aug) == 12 and len(flip_aug) == 24


def test_policy_validation_echoes_bad_values():
    with pytest.raises(ConfigError, match=r"Got \(\(0, 45\),\)"):
        PseudoClassPolicy(rotation_groups=((0, 45),))
    with pytest.raises(ConfigError, match="at most once"):
        PseudoClassPolicy(rotation_groups=((0,), (0, 180)))
    with pytest.raises(ConfigError, match="distinct, augment, off"):
        PseudoClassPolicy(flip="mirror")
    with pytest.raises(ConfigError, match="middle"):
        PseudoClassPolicy(regions=("full", "middle"))
    with pytest.raises(ConfigError, match="valid presets: documents"):
        policy_from_name("cards")
    with pytest.raises(ConfigError, match="unknown pseudo-class policy keys"):
        PseudoClassPolicy.from_dict({"flips": "off"})
    policy = PseudoClassPolicy.from_dict({"rotation_groups": [[0, 180], [90, 270]], "regions": ["full"]})
    assert policy.classes_per_item == 4


def test_render_variant_pixels():
    page = load_image(demo_items_dir() / "doc_memman_p026.png")
    h, w, _ = page.shape
    assert render_variant(page, 0, False, "full").shape == (h, w, 3)
    rotated = render_variant(page, 90, False, "full")
    assert rotated.shape == (w, h, 3) and rotated.dtype == np.uint8
    np.testing.assert_array_equal(render_variant(page, 180, False, "full"), page[::-1, ::-1])
    np.testing.assert_array_equal(render_variant(page, 0, True, "full"), page[:, ::-1])
    top, bottom = render_variant(page, 0, False, "top"), render_variant(page, 0, False, "bottom")
    np.testing.assert_array_equal(top, page[: (h + 1) // 2])
    np.testing.assert_array_equal(bottom, page[h - (h + 1) // 2 :])
    # the region is cut after rotating: top of the 180° page is the upside-down bottom
    np.testing.assert_array_equal(render_variant(page, 180, False, "top"), bottom[::-1, ::-1])
    # a 180°-symmetric image gives identical pixels for 0 and 180, as the symmetric preset assumes
    flag = load_image(demo_items_dir() / "flag_italy.png")[:, 150:300]  # white band: symmetric
    np.testing.assert_array_equal(render_variant(flag, 180, False, "top"), render_variant(flag, 0, False, "top"))
    with pytest.raises(ConfigError):
        render_variant(page, 45, False, "full")


def test_identical_bright_pages_merge_into_one_class():
    from PIL import Image

    from pocketvec.data.assets import demo_items_dir
    from pocketvec.data.pseudoclasses import merge_identical_classes

    with Image.open(demo_items_dir() / "doc_memman_p026.png") as image:
        page = np.asarray(image.convert("RGB"))
    other = np.asarray(Image.open(demo_items_dir() / "doc_memman_p027.png").convert("RGB"))
    variants = expand_pseudo_classes(["a", "b", "c"], PRESETS["single"])
    merged = merge_identical_classes(variants, [page, page.copy(), other])
    assert [v.class_id for v in merged] == [0, 0, 1]  # a mostly white page equals its copy, not its neighbour


def _brute_force_merge(variants, images, tolerance: float = 0.25) -> list[int]:
    """The O(n²) definition: union every pair within `tolerance` RMS and 5% aspect, then renumber."""
    import cv2

    rendered = [render_variant(images[v.item_index], v.rotation, v.flip, v.region) for v in variants]
    thumbs = np.stack([cv2.resize(cv2.cvtColor(r, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
                       .astype(np.float32).ravel() for r in rendered])
    aspect = np.log([r.shape[1] / r.shape[0] for r in rendered])
    parent = list(range(max(v.class_id for v in variants) + 1))

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    for i in range(len(variants)):
        for j in range(len(variants)):
            rms = np.sqrt(((thumbs[i] - thumbs[j]) ** 2).mean())
            if rms < tolerance and abs(aspect[i] - aspect[j]) < 0.05:
                a, b = root(variants[i].class_id), root(variants[j].class_id)
                parent[max(a, b)] = min(a, b)
    renumbered: dict[int, int] = {}
    return [renumbered.setdefault(root(v.class_id), len(renumbered)) for v in variants]


def test_bucketed_merge_finds_every_pair_the_brute_force_finds():
    """Near-identical renderings placed across bucket edges (grey levels stepped by a fraction of the
    bucket width, aspects around the 5% limit) merge exactly as the all-pairs definition says."""
    from pocketvec.data.pseudoclasses import merge_identical_classes

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    images = []
    for step in range(40):  # brightness ramps through several buckets in steps of 0.1 grey levels
        shift = step * 0.1
        images.append(np.clip(base.astype(np.float32) + shift, 0, 255).round().astype(np.uint8))
    images += [np.full((40 + k, 40, 3), 128, dtype=np.uint8) for k in range(0, 6)]  # aspects near 5% apart
    images += [rng.integers(0, 256, size=(50, 50, 3), dtype=np.uint8) for _ in range(4)]  # all distinct
    variants = expand_pseudo_classes([str(i) for i in range(len(images))], policy_from_name("upright"))
    merged = [v.class_id for v in merge_identical_classes(variants, images)]
    assert merged == _brute_force_merge(variants, images)
    assert len(set(merged)) < len({v.class_id for v in variants})  # some merged, ...
    assert len(set(merged)) > 4  # ... and not everything
