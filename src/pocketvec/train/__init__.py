"""Training: datasets and pseudo-classes, encoders, teachers, losses, PartialFC, DoRA, the loop."""
