"""The benchmark's photo simulator lives in pocketvec.data.query_backgrounds (`data photos` makes query photos with it
from the data package); kept here for the bench and old imports."""

from pocketvec.data.query_backgrounds import (
    BENCH_BACKGROUNDS,
    background,
    crop_background,
    synthetic_clutter,
    wallpaper_paths,
)

__all__ = ["BENCH_BACKGROUNDS", "background", "crop_background", "synthetic_clutter", "wallpaper_paths"]
