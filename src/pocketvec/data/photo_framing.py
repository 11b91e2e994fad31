"""How the photo simulator holds the phone (pocketvec.data.query_sim): `phone`, 3:4 or 9:16 portrait or landscape
whatever the item (`data photos`, which calibrate the accept rule); `item`, 4:3 along the item (the benchmark's)."""

FRAMINGS = ("phone", "item")
DEFAULT_FRAMING = "phone"
