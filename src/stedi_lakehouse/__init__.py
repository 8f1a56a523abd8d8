"""stedi-lakehouse: an open lakehouse for STEDI sensor data, privacy first."""

__version__ = "0.1.0"
