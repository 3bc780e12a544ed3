"""Shell: the agent's edges, everything that touches the world: the MQTT transport and its
TLS context, the durable store and its key, the audit log on disk, state files, the
camera, the clock, the codecs, the shipped manifests and model, and the loop that runs
the pure core (``edge.shell.agent``). Nothing outside this folder and ``edge.cli`` may do
I/O (``tests/unit/test_architecture.py``)."""
