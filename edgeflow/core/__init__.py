"""Leaf modules every other part of edgeflow may import (they import nothing of edgeflow)."""
