"""pocketvec: train, export, verify and run small on-device image-recognition encoders."""

__version__ = "0.1.0"
