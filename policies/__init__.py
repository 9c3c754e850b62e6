"""Routing decisions and learning state. Imports nothing from ``proxy``."""
