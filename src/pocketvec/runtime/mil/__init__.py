"""Core ML ML programs in numpy: the protobuf reader (proto), the ops (ops) and the interpreter
(interpreter). Used by the runtime's Core ML engines and by export's verification; never imports torch."""
