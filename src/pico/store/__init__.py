"""Atomic, verified on-disk formats: files written whole or not at all, read back checked."""
