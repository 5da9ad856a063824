"""File formats, the lowest layer: reading, merging and cutting pcap files, and per-packet CSV. Knows files and
bytes only (and the C record walk in opentap._native)."""
