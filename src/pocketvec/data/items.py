"""Item datasets: the folder and manifest reader lives in the runtime (pocketvec.runtime.items), which
enrolment uses without the data package; kept here for the data and training code and old imports."""

from pocketvec.runtime.items import (
    LAYOUTS,
    MANIFEST_NAME,
    ItemDataset,
    ItemImage,
    Layout,
    check_image_header,
    detect_layout,
    find_duplicates,
    load_items,
)

__all__ = ["LAYOUTS", "MANIFEST_NAME", "ItemDataset", "ItemImage", "Layout", "check_image_header", "detect_layout",
           "find_duplicates", "load_items"]
