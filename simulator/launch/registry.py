"""The engines `--emit` knows, by name (the CLI's choices come from here)."""
from simulator.registry import Registry

EMITTERS = Registry("engine")
