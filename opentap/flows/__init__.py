"""Flow metering: packets to NetFlow-style unidirectional flow records in nfdump CSV."""
