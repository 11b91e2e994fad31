"""Where the embedded demo items and background photos live: pocketvec.asset_dirs (on the ground floor, for
the runtime's gallery views); kept here for old imports."""

from pocketvec.asset_dirs import backgrounds_dir, demo_items_dir

__all__ = ["backgrounds_dir", "demo_items_dir"]
