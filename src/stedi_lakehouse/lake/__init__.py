"""The lake's storage layer: where things live (layout), its files (files, storage), its Delta
tables (tables, delta_log, catalog, maintenance), the one Spark session factory (session),
opening a lake and holding it (open, lease), the warm server (server), and reads without a JVM
(status, readers)."""
