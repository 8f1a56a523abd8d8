"""The rules presets: which records may leave the landing zone, and how they are paired."""

from enum import StrEnum


class Rules(StrEnum):
    """`privacy` is what STEDI's privacy rule requires; `udacity` reproduces the reference Glue
    project so its users can check parity."""

    PRIVACY = "privacy"
    UDACITY = "udacity"
