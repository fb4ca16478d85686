"""Encoders: one per answer format (Esri JSON, GeoJSON, PBF), on the engine's Result."""
