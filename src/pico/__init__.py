"""pico: Pixel-level Correspondence (PiCO, Sharma et al.) as a reproducible workflow.

Modules are named after the paper's concepts: ``synthetic`` (the demo world),
``sources``/``download`` (Section 3.1's data), ``shots`` and ``frames`` (30 Hz snippets),
``framestore`` (one file per snippet), ``manifest`` (per-shard video tables).
"""

__version__ = "0.1.0"
