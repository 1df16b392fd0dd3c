"""The mapping project: its GeoPackage (the source of truth), the workflow steps that write it, the iterative loop."""
