"""The 志愿贵州 provincial platform's open interface: client and streams."""
