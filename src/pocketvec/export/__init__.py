"""Export to ONNX and Core ML, quantization, metadata, parity verification, the MIL interpreter."""
