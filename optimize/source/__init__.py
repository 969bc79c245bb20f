"""The user's model file or folder, loaded into a Source with its input spec."""
