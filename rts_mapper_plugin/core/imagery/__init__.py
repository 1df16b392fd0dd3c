"""Imagery as delivered (PlanetScope, basemap quads, Sentinel-2) made into each year's 8-bit RGB mosaic."""
