"""The package's version, on the ground floor: every layer may read it without importing pocketvec's
top (the package __init__ lazily loads the Recognizer, which imports the runtime)."""

__version__ = "0.1.0"
