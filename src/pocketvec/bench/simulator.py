"""The benchmark's photo simulator lives in pocketvec.data.query_sim (`data photos` makes query photos with it
from the data package); kept here for the bench and old imports."""

from pocketvec.data.query_sim import (
    PhotoSimConfig,
    query_rng,
    simulate_photo,
)

__all__ = ["PhotoSimConfig", "query_rng", "simulate_photo"]
