"""The phone-photo simulator (numpy, OpenCV, albumentations): the gallery views photograph
items with it and training augments with it (through pocketvec.data.augment)."""
