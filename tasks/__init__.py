"""Hydra applications behind edgeflow's console scripts."""
