"""Writing and merging what runs found."""
