"""Metric-learning losses: margin heads, sharded PartialFC, pair/triplet and center losses, distillation."""
