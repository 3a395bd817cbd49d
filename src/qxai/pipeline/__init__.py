"""One function per stage; the CLI and the demo call these."""
