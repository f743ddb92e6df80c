"""The lowest layer: typed configs from YAML and provenance (versions, hashes, atomic JSON)."""
