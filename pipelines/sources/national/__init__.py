"""The national volunteer service system's exchange interface: client and streams."""
