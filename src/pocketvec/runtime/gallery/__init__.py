"""The gallery family: the labelled embeddings of the registered items, tied to one model.

- `store`: the Gallery (rows, labels, sources, accept rule; add, remove, save, load), re-exported here.
- `file`: the .pvg file format (encode, decode, checks); `header`: its JSON header's checks.
- `update`: read-modify-write of a gallery file under its lock.
- `views`: gallery rows blended with simulated phone photos of each item.
"""

from pocketvec.runtime.gallery.store import (
    DTYPE_CHOICES,
    AddReport,
    Gallery,
    Skipped,
    check_dtype,
    model_local_shape,
    quantize,
)

__all__ = ["DTYPE_CHOICES", "AddReport", "Gallery", "Skipped", "check_dtype", "model_local_shape", "quantize"]
