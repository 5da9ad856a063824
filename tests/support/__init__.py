"""What the tests share that is not a fixture: configs and tokens, namespace hosts, daemons as processes, sshd and
PostgreSQL, frame and pcap builders, the flow-meter oracles, and the in-memory drivers the unit tests run the
reconciler and the capture engine on. Imported by tests of both tiers and by the benchmarks (bench/)."""
