"""Contracts of the raw records as delivered to `<lake root>/landing/<dataset>/`.

Field names are the delivered JSON keys. A record that breaks its contract goes to
`<dataset>_quarantine` with the reason; unknown extra keys are allowed and ignored
(`extra="ignore"`), so a feed that adds a field does not stop the lake.
String fields accept JSON numbers as their text (`phone` arrives both ways).
"""

from pydantic import BaseModel, ConfigDict, Field

from stedi_lakehouse.contracts.types import (
    Email,
    EpochMillis,
    FiniteFloat,
    NonNegativeInt,
    Serial,
)

RECORD_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


class CustomerRecord(BaseModel):
    """One customer record from the website/fulfilment feed; a customer may be sent again later
    with a newer `lastUpdateDate`. Consent fields absent or null mean no consent."""

    model_config = RECORD_CONFIG

    customerName: str | None = Field(None, description="Full name.")
    email: Email = Field(description="The customer's identity across feeds.")
    phone: str | None = Field(None, description="Phone number; a JSON number or string.")
    birthDay: str | None = Field(None, description="Birth date as delivered (YYYY-MM-DD).")
    serialNumber: Serial = Field(description="Serial number of the customer's Step Trainer.")
    registrationDate: EpochMillis = Field(description="When the customer registered, epoch ms.")
    lastUpdateDate: EpochMillis = Field(description="When this record was last updated, epoch ms.")
    shareWithResearchAsOfDate: EpochMillis | None = Field(
        None, description="Consent to research use since this time, epoch ms; null = no consent."
    )
    shareWithPublicAsOfDate: EpochMillis | None = Field(None, description="Public sharing consent.")
    shareWithFriendsAsOfDate: EpochMillis | None = Field(None, description="Friends consent.")


class AccelerometerReading(BaseModel):
    """One accelerometer reading from the phone app."""

    model_config = RECORD_CONFIG

    user: Email = Field(description="E-mail of the app user (the customer's email).")
    timestamp: EpochMillis = Field(description="When the reading was taken, epoch ms.")
    x: FiniteFloat = Field(description="Acceleration along x.")
    y: FiniteFloat = Field(description="Acceleration along y.")
    z: FiniteFloat = Field(description="Acceleration along z.")


class StepTrainerReading(BaseModel):
    """One distance reading from a Step Trainer device."""

    model_config = RECORD_CONFIG

    sensorReadingTime: EpochMillis = Field(description="When the reading was taken, epoch ms.")
    serialNumber: Serial = Field(description="Serial number of the device.")
    distanceFromObject: NonNegativeInt = Field(description="Distance of the object in front.")
