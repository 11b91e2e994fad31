"""The source family: the public item sets that `pocketvec data fetch` builds from Debian and npm packages.

- `sets`: the sets by name (SOURCES, LABEL_FONTS) and their cache folders and manifests, re-exported here.
- `spec`: a set's frozen spec (SourceSpec, PackageRef); `catalog`: the training pool's sets.
- `packages`: downloading and unpacking the packages; `parts`: reading files inside them (zip entries,
  Iconify sets, SVG parts); `plan`: which items a set makes; `fetch`: building a set's folder.
"""

from pocketvec.data.sources.sets import (
    DONE_MARKER,
    LABEL_FONTS,
    MANIFEST_NAME,
    SOURCES,
    CacheStatus,
    cache_root,
    cache_status,
    get_source,
    read_manifest,
    set_dir,
    source_names,
)
from pocketvec.data.sources.spec import PackageRef, SourceSpec

__all__ = ["DONE_MARKER", "LABEL_FONTS", "MANIFEST_NAME", "SOURCES", "CacheStatus", "PackageRef", "SourceSpec",
           "cache_root", "cache_status", "get_source", "read_manifest", "set_dir", "source_names"]
