"""What a running router holds: its storage (state), the current generation of Services and
Tracker (build), hot reload (reload), and the in-process ModelManager (in_process)."""
