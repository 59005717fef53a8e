"""Sweeps: search spaces, TOML specs, what is built from them, and running them."""
