"""Writes the gallery files of the earlier format versions that test_runtime_gallery_append.py reads: run it
with the writer of that version (pocketvec before format version 4) on the path, from this folder:

    PYTHONPATH=/path/to/old/pocketvec/src python make_old_galleries.py

v2-int8.pvg: 3 int8 rows of 16 values; v3-float16-maps.pvg: the same rows as float16 with (4, 6) local maps;
v4-int8-maps.pvg (written by pocketvec before format version 5, as `with_maps` but int8): the int8 rows with
their full maps.
"""

import numpy as np

from pocketvec.runtime.gallery import Gallery


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


rng = np.random.default_rng(0)
vectors, maps = unit(rng.standard_normal((3, 16))), unit(rng.standard_normal((3, 4, 6)))
labels, sources = [f"item0_{i % 3}" for i in range(3)], [f"{0:032x}{i:032x}" for i in range(3)]
plain = Gallery("space", 16, "int8", created_by="pocketvec 0.1.0")
plain.add(vectors, labels, sources)
plain.save("v2-int8.pvg")
with_maps = Gallery("space", 16, "float16", local_shape=(4, 6), created_by="pocketvec 0.1.0")
with_maps.add(vectors, labels, sources, maps)
with_maps.save("v3-float16-maps.pvg")
int8_maps = Gallery("space", 16, "int8", local_shape=(4, 6), created_by="pocketvec 0.1.0")
int8_maps.add(vectors, labels, sources, maps)
int8_maps.save("v4-int8-maps.pvg")
