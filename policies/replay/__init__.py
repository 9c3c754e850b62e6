"""Offline replay of prompt x model outcome tables through the real policies and store."""
