"""Encoders: query results (Arrow columns and quantized geometries) to response bytes."""
