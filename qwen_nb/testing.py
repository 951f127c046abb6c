"""pytest plugin (auto-loaded): fixtures that start the local emulator. Filled in by the notebooks work."""
