"""Datapath drivers: make the kernel copy tap flows' packets to tap services' ports."""
