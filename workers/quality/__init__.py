"""Loop quality: what the automatic side gets wrong, what review buys, where the bands should be."""
