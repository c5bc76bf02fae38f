"""PyTorch Lightning implementation: architectures, tasks, data and the `train` entry point."""
