"""The embedded default: a procedural shapes dataset and a small SD-architecture model trained on it."""
