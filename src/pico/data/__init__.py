"""Stages 1-6 (Sections 3.1-3.3): videos, shots, frames, flow, tracks, frame selection and point pairs."""
