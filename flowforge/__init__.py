"""The flowforge command and the embedded app that runs every service in one process."""
