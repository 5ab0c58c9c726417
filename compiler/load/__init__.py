"""Stage 1, load: the spec's text and the files around it, read into plain data with positions."""
