"""The phone-side matcher in Python. Imports no torch: numpy, Pillow and onnxruntime only."""
