"""Bytes on the wire: codec, message validation, ZeroMQ and in-process transports."""
