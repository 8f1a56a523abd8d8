"""stedi-lakehouse: an open lakehouse for STEDI sensor data, privacy first."""

__version__ = "0.2.0"
